"""API processes claim a CPU core each: no two claim the same one, a claim ends with its
holder, and what a pinned thread starts can use the cores its process was given again."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from videoqueue import cpus, heap
from videoqueue.api import serving
from videoqueue.settings import Settings

CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []

pytestmark = pytest.mark.skipif(len(CORES) < 2, reason="pins threads to cores (Linux, 2+ cores)")

CLAIM = """
import json, os, sys, threading
from videoqueue.cpus import claim_core
namespace, threads = sys.argv[1], int(sys.argv[2])
claimed = []
def claim():
    claimed.append((claim_core(namespace), sorted(os.sched_getaffinity(0))))
for _ in range(threads):
    thread = threading.Thread(target=claim)
    thread.start()
    thread.join()
print(json.dumps({"claimed": claimed, "main": sorted(os.sched_getaffinity(0))}), flush=True)
if len(sys.argv) > 3:
    sys.stdin.read()  # hold the claims until told to exit
"""


def claims_in_child(namespace: str, threads: int) -> Any:
    """What a process finds whose `threads` threads, one after another, each claim a core."""
    done = subprocess.run(
        [sys.executable, "-c", CLAIM, namespace, str(threads)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return json.loads(done.stdout)


@pytest.fixture
def namespace(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Claims of this test only: a `serve` running beside the tests claims under its own.
    Those made in this process end with the test."""
    claims: list[socket.socket] = []
    monkeypatch.setattr(cpus, "_claims", claims)
    yield f"videoqueue-test-{uuid.uuid4().hex}"
    for claim in claims:
        claim.close()


def test_each_claim_gets_a_core_of_its_own_until_none_is_left(namespace: str) -> None:
    found = claims_in_child(namespace, len(CORES) + 1)

    pinned = found["claimed"][: len(CORES)]
    assert sorted(core for core, _ in pinned) == CORES
    assert all(allowed == [core] for core, allowed in pinned)
    # Every core is claimed: the last thread runs where the scheduler puts it.
    assert found["claimed"][-1] == [None, CORES]
    assert found["main"] == CORES  # a claim keeps only the thread that made it


def test_a_core_claimed_by_a_live_process_is_not_claimed_again_and_is_freed_by_its_exit(
    namespace: str,
) -> None:
    command = [sys.executable, "-c", CLAIM, namespace, "1", "hold"]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        ((held, _),) = json.loads(holder.stdout.readline())["claimed"]
        ((other, _),) = claims_in_child(namespace, 1)["claimed"]
        holder.stdin.close()  # the holder exits
    assert held == CORES[0]
    assert other is not None and other != held
    # The holder's claim went with it.
    ((again, _),) = claims_in_child(namespace, 1)["claimed"]
    assert again == held


def test_an_api_process_claims_a_core_for_its_loop_unless_pinning_is_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, namespace: str
) -> None:
    monkeypatch.setattr(cpus, "API_CORES", namespace)
    monkeypatch.setattr(heap, "freeze_startup_objects", lambda: None)  # not this process's

    def affinity_of_the_loop_thread(pinning: bool) -> list[int]:
        settings = Settings(data_dir=tmp_path, api_cpu_pinning=pinning)
        passed = {"settings": settings.model_dump(mode="json"), "parent_pid": os.getpid()}
        monkeypatch.setenv(serving.SETTINGS_ENV, json.dumps(passed))
        found: list[int] = []

        def load_the_app() -> None:  # as uvicorn does, in the thread that will run the loop
            serving.app_from_environment()
            found.extend(sorted(os.sched_getaffinity(0)))

        thread = threading.Thread(target=load_the_app)
        thread.start()
        thread.join()
        return found

    assert affinity_of_the_loop_thread(pinning=False) == CORES
    assert affinity_of_the_loop_thread(pinning=True) == [CORES[0]]
    assert affinity_of_the_loop_thread(pinning=True) == [CORES[1]]  # the first still holds
    assert sorted(os.sched_getaffinity(0)) == CORES


def test_a_thread_allowed_its_process_cores_again_may_run_on_each(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cpus, "_before_pinning", [])
    found: list[int] = []

    def pinned_then_freed() -> None:
        assert cpus.claim_core(namespace) is not None
        assert len(os.sched_getaffinity(0)) == 1
        cpus.allow_cores(cpus.unpinned_cores())
        found.extend(sorted(os.sched_getaffinity(0)))

    thread = threading.Thread(target=pinned_then_freed)
    thread.start()
    thread.join()
    assert found == CORES


def test_freed_threads_keep_to_the_cores_the_process_was_given(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `taskset` (here: the machine looks twice as big as the cores this process was
    given), a pinned thread's children go back to those cores, not to every core there is."""
    monkeypatch.setattr(cpus, "_before_pinning", [])
    monkeypatch.setattr(os, "cpu_count", lambda: 2 * len(CORES))
    requested: list[frozenset[int]] = []
    set_affinity = os.sched_setaffinity

    def recording(pid: int, cores: Any) -> None:
        requested.append(frozenset(cores))
        set_affinity(pid, cores)

    monkeypatch.setattr(os, "sched_setaffinity", recording)

    def pinned_then_freed() -> None:
        core = cpus.claim_core(namespace)
        assert core is not None
        assert cpus.unpinned_cores() == frozenset(CORES)  # not what the pinned thread has
        cpus.allow_cores(cpus.unpinned_cores())

    thread = threading.Thread(target=pinned_then_freed)
    thread.start()
    thread.join()
    assert len(requested) == 2
    assert len(requested[0]) == 1
    assert requested[1] == frozenset(CORES)
