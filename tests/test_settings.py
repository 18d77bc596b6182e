"""Settings that are resolved from what the machine has when they are not set."""

from __future__ import annotations

import os

import pytest

from videoqueue.settings import Settings


@pytest.mark.parametrize(("cores", "workers", "processes"), [(2, 1, 1), (8, 1, 7), (2, 4, 1)])
def test_api_processes_default_to_the_cores_the_workers_leave(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int, processes: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cores)), raising=False)

    assert Settings(workers=workers).resolved_api_processes == processes


def test_api_processes_set_are_what_serve_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(2)), raising=False)

    assert Settings(workers=4, api_processes=3).resolved_api_processes == 3


def test_a_worker_cannot_count_lost_before_its_next_heartbeat() -> None:
    assert Settings(worker_heartbeat_seconds=5, worker_lost_after_seconds=15)
    with pytest.raises(ValueError, match="longer than worker_heartbeat_seconds"):
        Settings(worker_heartbeat_seconds=10, worker_lost_after_seconds=10)
