"""Engines run in a warm child process: set up once, then jobs; crashes take only the child;
errors cross intact; a cancel or a time limit stops the job."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from videoqueue.engines.base import (
    EngineError,
    JobCancelled,
    JobInput,
    ProviderContentPolicy,
    TimeLimitExceeded,
)
from videoqueue.engines.isolation import EngineCrashed, IsolatedEngine
from videoqueue.engines.lifecycle import RunLimits
from videoqueue.engines.registry import UnknownEngine, build_engines
from videoqueue.logs import configure_logging

SCRIPTED = "tests.engines.fixture_engines:Scripted"
ROOT = Path(__file__).resolve().parents[2]
# A worker that hands one job to its engine's child and waits: the test kills it.
WORKER = """
import sys
from pathlib import Path
from videoqueue.engines.base import JobInput
from videoqueue.engines.isolation import IsolatedEngine
job = JobInput(job_id="j", model="m", prompt=sys.argv[2])
engine = IsolatedEngine("scripted", sys.argv[1])
engine.setup(60)
engine.run(job, Path(sys.argv[3]), lambda _: None)
"""


@pytest.fixture
def engine() -> Iterator[IsolatedEngine]:
    isolated = IsolatedEngine("scripted", SCRIPTED)
    isolated.setup(60)
    assert isolated.ready and isolated.setup_error is None
    yield isolated
    isolated.close()


def _run(
    engine: IsolatedEngine, prompt: str, output: Path, limits: RunLimits | None = None
) -> tuple[int, list[float]]:
    seen: list[float] = []
    engine.run(JobInput(job_id="j", model="m", prompt=prompt), output, seen.append, limits)
    return int(output.read_text()), seen


def _start(engine: IsolatedEngine, prompt: str, output: Path, limits: RunLimits) -> Any:
    """Run a job in a thread; the outcome (`VideoInfo` or the exception) lands in a list."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(_run(engine, prompt, output, limits))
        except Exception as error:
            outcome.append(error)

    threading.Thread(target=run, daemon=True).start()
    wait_until(lambda: output.exists(), timeout=60)
    return outcome


def test_progress_crosses_in_order_and_the_child_stays_warm(
    engine: IsolatedEngine, tmp_path: Path
) -> None:
    first_pid, progress = _run(engine, "ok", tmp_path / "a")
    second_pid, _ = _run(engine, "ok", tmp_path / "b")
    assert progress == [0.25, 0.5, 1.0]
    assert first_pid == second_pid != os.getpid()


def test_a_crashing_engine_takes_only_its_child_down(
    engine: IsolatedEngine, tmp_path: Path
) -> None:
    before, _ = _run(engine, "ok", tmp_path / "a")
    with pytest.raises(EngineCrashed, match=r"process died \(exit code -9\)") as crashed:
        _run(engine, "crash", tmp_path / "b")
    assert crashed.value.refundable and not engine.ready
    engine.setup(60)
    after, _ = _run(engine, "ok", tmp_path / "c")
    assert after != before, "a fresh child serves the next job"


@pytest.mark.parametrize(
    ("prompt", "kind", "refundable"),
    [
        ("refuse", EngineError, False),
        ("policy", ProviderContentPolicy, True),
        ("fail", EngineError, True),
    ],
)
def test_engine_errors_cross_with_their_kind_and_refund_flag(
    engine: IsolatedEngine, tmp_path: Path, prompt: str, kind: type[EngineError], refundable: bool
) -> None:
    with pytest.raises(kind) as raised:
        _run(engine, prompt, tmp_path / "x")
    assert type(raised.value) is kind
    assert raised.value.refundable is refundable
    if prompt == "policy":
        assert isinstance(raised.value, ProviderContentPolicy)
        assert raised.value.recommended_model == "wan-2-7-text-to-video"
    if prompt == "fail":
        assert raised.value.message == "RuntimeError: a bug"
    pid, _ = _run(engine, "ok", tmp_path / "after")
    assert pid != os.getpid()


def test_an_engine_that_cannot_load_says_why_at_setup_and_takes_no_job() -> None:
    engine = IsolatedEngine("unloadable", "tests.engines.fixture_engines:Unloadable")
    for _ in range(2):  # and again on a retry
        engine.setup(60)
        assert not engine.ready
        assert engine.setup_error == "OSError: libvulkan.so.1: cannot open shared object file"
    assert not multiprocessing.active_children(), "the failed child has exited"


def test_an_engine_slower_to_load_than_the_timeout_fails_its_setup() -> None:
    engine = IsolatedEngine("slow", "tests.engines.fixture_engines:SlowToLoad")
    engine.setup(0.5)
    assert not engine.ready and engine.setup_error == "not ready after 0.5 s"
    assert not multiprocessing.active_children()


def test_a_cancel_stops_the_job_at_its_next_progress_call(
    engine: IsolatedEngine, tmp_path: Path
) -> None:
    cancel = threading.Event()
    outcome = _start(engine, "tick", tmp_path / "a", RunLimits(cancel=cancel))
    pid = int((tmp_path / "a").read_text())
    cancelled_at = time.monotonic()
    cancel.set()
    wait_until(lambda: outcome, timeout=5)
    assert isinstance(outcome[0], JobCancelled)
    assert time.monotonic() - cancelled_at < 2
    assert _run(engine, "ok", tmp_path / "b")[0] == pid, "the same child takes the next job"


def test_an_engine_that_ignores_a_cancel_is_killed_after_the_grace(
    engine: IsolatedEngine, tmp_path: Path
) -> None:
    cancel = threading.Event()
    limits = RunLimits(cancel=cancel, cancel_grace_seconds=0.5)
    outcome = _start(engine, "stubborn", tmp_path / "a", limits)
    pid = int((tmp_path / "a").read_text())
    cancel.set()
    wait_until(lambda: outcome, timeout=10)
    assert isinstance(outcome[0], JobCancelled)
    assert not engine.ready and not _running(pid)


def test_a_job_past_its_time_limit_fails_refundable_and_its_child_is_replaced(
    engine: IsolatedEngine, tmp_path: Path
) -> None:
    with pytest.raises(TimeLimitExceeded) as late:
        _run(engine, "tick", tmp_path / "a", RunLimits(max_run_seconds=0.5))
    assert late.value.refundable
    assert late.value.message == "the job ran past its model's time limit of 0.5 s"
    pid = int((tmp_path / "a").read_text())
    assert not engine.ready and not _running(pid)
    engine.setup(60)
    assert _run(engine, "ok", tmp_path / "b")[0] != pid


def test_unknown_engine_names_are_refused() -> None:
    with pytest.raises(UnknownEngine, match="no engine named 'diffusers'"):
        build_engines(["preview", "diffusers"])


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


@pytest.mark.parametrize("prompt", ["hang", "tick"])
def test_the_child_of_a_killed_worker_notices_and_exits_quietly(
    tmp_path: Path, prompt: str
) -> None:
    pid_file, stderr = tmp_path / "child.pid", tmp_path / "stderr"
    with stderr.open("wb") as err:
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, SCRIPTED, prompt, str(pid_file)], cwd=ROOT, stderr=err
        )
    child = 0
    try:
        child = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=60))
        worker.kill()
        worker.wait(10)
        wait_until(lambda: not _running(child), timeout=15)
    finally:
        worker.kill()
        if child and _running(child):
            os.kill(child, signal.SIGKILL)
    assert "Traceback" not in stderr.read_text(), stderr.read_text()


def test_ctrl_c_reaching_the_child_leaves_the_job_to_the_worker(
    engine: IsolatedEngine, tmp_path: Path
) -> None:
    output = tmp_path / "out"

    def press_ctrl_c() -> None:  # a terminal sends SIGINT to the whole process group
        child = int(wait_until(lambda: output.exists() and output.read_text(), timeout=60))
        os.kill(child, signal.SIGINT)

    pressing = threading.Thread(target=press_ctrl_c)
    pressing.start()
    pid, progress = _run(engine, "slow", output)
    pressing.join()
    assert progress == [0.25, 0.5, 1.0] and pid != os.getpid()


def test_the_child_logs_as_its_worker_does_each_job_s_records_with_its_id(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("json")  # as the worker process does
    try:
        engine = IsolatedEngine("scripted", SCRIPTED)
        engine.setup(60)
        job = JobInput(job_id="job-that-logs", model="m", prompt="log")
        engine.run(job, tmp_path / "out", lambda _: None)
        engine.close()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    records = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line[:1] == "{"]
    (drawing,) = [r for r in records if r["message"] == "the scripted engine is drawing"]
    assert drawing["level"] == "INFO" and drawing["job_id"] == "job-that-logs"
    assert drawing["pid"] != os.getpid()
