"""Each worker works in a folder it owns; a starting worker removes those that dead workers of
its host left, job folders included, and keeps those of live ones."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import load_job, wait_until
from tests.jobs.fixture_workers import queue_scripted, start_scripted_worker
from videoqueue.db.session import Database
from videoqueue.jobs.workdir import LOCK_NAME, claim_work_folder, remove_abandoned

HOST = socket.gethostname()


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _left_behind(root: Path, name: str, *, lock: bool) -> Path:
    folder = root / name
    (folder / "vq-job-1-abcd").mkdir(parents=True)
    (folder / "vq-job-1-abcd" / "output.mp4").write_bytes(b"half an mp4")
    if lock:
        (folder / LOCK_NAME).touch()
    return folder


def test_folders_of_dead_workers_go_and_those_of_live_ones_stay(tmp_path: Path) -> None:
    root = tmp_path / "work"
    live = claim_work_folder(root)
    try:
        dead = _dead_pid()
        unlocked = _left_behind(root, f"{HOST}-{dead}-a1b2", lock=True)
        never_locked = _left_behind(root, f"{HOST}-{dead}-c3d4", lock=False)
        starting = _left_behind(root, f"{HOST}-{os.getpid()}-e5f6", lock=False)
        elsewhere = _left_behind(root, f"another-host-{dead}-g7h8", lock=True)

        assert remove_abandoned(root) == sorted([unlocked, never_locked])
        assert sorted(root.iterdir()) == sorted([live.path, starting, elsewhere])
    finally:
        live.remove()
    assert not live.path.exists()


def test_a_job_folder_lives_inside_the_workers_folder_and_goes_with_the_job(
    tmp_path: Path,
) -> None:
    folder = claim_work_folder(tmp_path)
    try:
        with folder.job_folder("job-7") as job_tmp:
            job_path = Path(job_tmp)
            assert job_path.parent == folder.path and job_path.name.startswith("vq-job-7-")
        assert not job_path.exists()
    finally:
        folder.remove()


def test_a_worker_starting_removes_what_a_killed_worker_left(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the spawned workers' tempfile.gettempdir()
    root = tmp_path / f"videoqueue-work-{os.getuid()}"
    db = Database(database_url)
    _, job_id = queue_scripted(db, "tick", max_attempts=1)
    killed = start_scripted_worker(database_url, tmp_path / "media", grace_seconds=1)
    try:
        wait_until(lambda: load_job(db, job_id).progress == 0.5, timeout=60)
        [left] = root.glob(f"{HOST}-{killed.pid}-*")
        assert [p.name.startswith(f"vq-{job_id}-") for p in left.iterdir() if p.is_dir()] == [True]
        killed.kill()
        killed.join(10)
        starting = start_scripted_worker(database_url, tmp_path / "media", grace_seconds=1)
        try:
            # The starting worker removes the dead one's folder, then makes its own: wait for
            # both, not only the first.
            wait_until(
                lambda: [p.name.split("-")[-2] for p in root.iterdir()] == [str(starting.pid)],
                timeout=60,
            )
            assert not left.exists()
        finally:
            assert starting.pid is not None
            os.kill(starting.pid, signal.SIGTERM)
            starting.join(20)
        assert starting.exitcode == 0
        assert list(root.iterdir()) == [], "a worker that stops removes its own folder"
    finally:
        killed.kill()
        db.dispose()
