"""Database work runs in a few threads, which requests get in the order they asked."""

from __future__ import annotations

import threading

import anyio

from videoqueue.api.database_threads import in_database_thread


def test_database_work_runs_a_few_at_a_time_in_the_order_asked() -> None:
    running: list[int] = []
    started: list[int] = []
    most = 0
    guard = threading.Lock()

    def work(number: int) -> int:
        nonlocal most
        with guard:
            started.append(number)
            running.append(number)
            most = max(most, len(running))
        threading.Event().wait(0.02)  # long enough for every other request to be waiting
        with guard:
            running.remove(number)
        return number * 10

    async def requests() -> list[int]:
        answers: list[int] = []

        async def one(number: int) -> None:
            answers.append(await in_database_thread(2, work, number))

        async with anyio.create_task_group() as group:
            for number in range(8):
                group.start_soon(one, number)
                await anyio.sleep(0.001)  # each asks after the one before
        return answers

    answers = anyio.run(requests)

    assert most == 2
    assert started == list(range(8))
    assert sorted(answers) == [n * 10 for n in range(8)]
