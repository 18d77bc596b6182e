"""Workers run at a lower CPU priority than the API (`worker_nice`), and so do every thread
they start and their engines' children; priority is only ever given up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Env, wait_until
from videoqueue.workers import Supervisor

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

LOWER = """
import json, os, subprocess, sys, threading
from videoqueue.cpus import lower_priority
niceness = int(sys.argv[1])
lower_priority(niceness)
seen = {}
thread = threading.Thread(target=lambda: seen.update(thread=os.getpriority(os.PRIO_PROCESS, 0)))
thread.start()
thread.join()
child = subprocess.run(
    [sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"],
    capture_output=True, text=True, check=True,
)
lower_priority(niceness - 3)  # asks for more priority back: refused quietly
print(json.dumps({
    "main": os.getpriority(os.PRIO_PROCESS, 0), "child": int(child.stdout), **seen,
}))
"""


def _nice(stat: Path) -> int:
    """The nice value in a `/proc/.../stat` file (its 19th field)."""
    return int(stat.read_text().rpartition(")")[2].split()[16])


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue  # it ended meanwhile
            if parent == pid:
                found.append(int(entry.name))
    return found


def test_lower_priority_holds_for_later_threads_and_children_and_is_never_undone() -> None:
    niceness = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 5)
    out = subprocess.run(
        [sys.executable, "-c", LOWER, str(niceness)], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == {"main": niceness, "thread": niceness, "child": niceness}


def test_a_worker_its_threads_and_its_engines_children_run_at_worker_nice(env: Env) -> None:
    niceness = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)
    supervisor = Supervisor(env.settings.model_copy(update={"worker_nice": niceness}), 1)
    supervisor.start()
    try:
        pid = supervisor.processes[0].pid
        assert pid is not None
        children = wait_until(lambda: _children(pid), timeout=60)  # the preview engine's
        threads = list(Path(f"/proc/{pid}/task").iterdir())
        assert len(threads) > 1  # heartbeats and presence run beside the main thread
        assert {_nice(task / "stat") for task in threads} == {niceness}
        assert {_nice(Path(f"/proc/{child}/stat")) for child in children} == {niceness}
    finally:
        supervisor.stop()
    assert os.getpriority(os.PRIO_PROCESS, 0) < niceness  # the test's own process is untouched
