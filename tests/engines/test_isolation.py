"""Engines run in a warm child process: crashes take only the child; errors cross intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_until
from videoqueue.engines.base import EngineError, JobInput, ProviderContentPolicy
from videoqueue.engines.isolation import EngineCrashed, IsolatedEngine
from videoqueue.engines.registry import UnknownEngine, build_engines

SCRIPTED = "tests.engines.fixture_engines:Scripted"
ROOT = Path(__file__).resolve().parents[2]
# A worker that hands one job to its engine's child and waits: the test kills it.
WORKER = """
import sys
from pathlib import Path
from videoqueue.engines.base import JobInput
from videoqueue.engines.isolation import IsolatedEngine
job = JobInput(job_id="j", model="m", prompt=sys.argv[2])
IsolatedEngine("scripted", sys.argv[1]).generate(job, Path(sys.argv[3]), lambda _: None)
"""


@pytest.fixture
def engine() -> Iterator[IsolatedEngine]:
    isolated = IsolatedEngine("scripted", SCRIPTED)
    yield isolated
    isolated.close()


def _run(engine: IsolatedEngine, prompt: str, output: Path) -> tuple[int, list[float]]:
    seen: list[float] = []
    engine.generate(JobInput(job_id="j", model="m", prompt=prompt), output, seen.append)
    return int(output.read_text()), seen


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
        engine.generate(
            JobInput(job_id="j", model="m", prompt="crash"), tmp_path / "b", lambda _: None
        )
    assert crashed.value.refundable
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
        engine.generate(
            JobInput(job_id="j", model="m", prompt=prompt), tmp_path / "x", lambda _: None
        )
    assert type(raised.value) is kind
    assert raised.value.refundable is refundable
    if prompt == "policy":
        assert isinstance(raised.value, ProviderContentPolicy)
        assert raised.value.recommended_model == "wan-2-7-text-to-video"
    if prompt == "fail":
        assert raised.value.message == "RuntimeError: a bug"
    pid, _ = _run(engine, "ok", tmp_path / "after")
    assert pid != os.getpid()


def test_an_engine_that_cannot_load_fails_each_job_saying_why(tmp_path: Path) -> None:
    engine = IsolatedEngine("unloadable", "tests.engines.fixture_engines:Unloadable")
    try:
        for _ in range(2):
            with pytest.raises(EngineError, match="could not start: OSError: libvulkan") as err:
                engine.generate(JobInput(job_id="j", model="m"), tmp_path / "x", lambda _: None)
            assert not isinstance(err.value, EngineCrashed)
    finally:
        engine.close()


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
