"""Database work runs in a few threads, which requests get in the order they asked."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import anyio

from videoqueue.api.database_threads import in_database_thread


@dataclass
class _Record:
    started: list[int] = field(default_factory=list)
    running: list[int] = field(default_factory=list)
    most: int = 0
    answers: list[int] = field(default_factory=list)


def _eight_requests(threads: int) -> _Record:
    """Eight requests, each asking 1 ms after the one before, for 20 ms of work each."""
    record = _Record()
    guard = threading.Lock()

    def work(number: int) -> int:
        with guard:
            record.started.append(number)
            record.running.append(number)
            record.most = max(record.most, len(record.running))
        threading.Event().wait(0.02)  # long enough for every other request to be waiting
        with guard:
            record.running.remove(number)
        return number * 10

    async def requests() -> None:
        async def one(number: int) -> None:
            record.answers.append(await in_database_thread(threads, work, number))

        async with anyio.create_task_group() as group:
            for number in range(8):
                group.start_soon(one, number)
                await anyio.sleep(0.001)

    anyio.run(requests)
    return record


def test_database_work_runs_a_few_at_a_time() -> None:
    record = _eight_requests(threads=2)

    assert record.most == 2
    assert sorted(record.answers) == [n * 10 for n in range(8)]


def test_requests_get_a_database_thread_in_the_order_they_asked() -> None:
    # One thread, so the order work starts in is the order the limiter let requests in (with
    # two, two requests let in together may reach their threads either way round).
    record = _eight_requests(threads=1)

    assert record.started == list(range(8))
    assert record.answers == [n * 10 for n in range(8)]
