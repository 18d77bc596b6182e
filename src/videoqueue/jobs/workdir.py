"""The folder a worker process works in, and the removal of those that dead workers left.

Each worker process owns one folder, `<tmp>/videoqueue-work-<uid>/<host>-<pid>-<random>/`, and
holds an flock on its `owner.lock` while it lives; a job's files go in a fresh folder inside.
A killed worker cannot clean up, but the kernel drops its lock, so the next worker to start
on the host removes the folder.
"""

from __future__ import annotations

import atexit
import fcntl
import logging
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = "owner.lock"


def default_root() -> Path:
    """Where this host user's workers keep their folders."""
    return Path(tempfile.gettempdir()) / f"videoqueue-work-{os.getuid()}"


@dataclass(frozen=True)
class WorkFolder:
    """A folder this process owns for as long as it holds the flock on `lock_fd`."""

    path: Path
    lock_fd: int

    def job_folder(self, job_id: str) -> tempfile.TemporaryDirectory[str]:
        """A fresh folder for one job's inputs and output, removed when the job ends."""
        return tempfile.TemporaryDirectory(prefix=f"vq-{job_id}-", dir=self.path)

    def remove(self) -> None:
        """Remove the folder and give up its lock (when the worker stops)."""
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self.lock_fd)


_claimed: dict[int, WorkFolder] = {}  # by pid: a forked child claims a folder of its own


def job_folder(job_id: str) -> tempfile.TemporaryDirectory[str]:
    """A fresh folder for one job, inside this process's work folder."""
    return process_work_folder().job_folder(job_id)


def process_work_folder() -> WorkFolder:
    """This process's work folder: claimed on the first call (which first removes what dead
    workers left) and removed when the process exits."""
    folder = _claimed.get(os.getpid())
    if folder is None:
        folder = _claimed[os.getpid()] = claim_work_folder()
        atexit.register(folder.remove)
    return folder


def claim_work_folder(root: Path | None = None) -> WorkFolder:
    """Remove what dead workers of this host left under `root`, then make and lock our own."""
    root = root or default_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for abandoned in remove_abandoned(root):
        log.info("removed %s, left by a worker that died", abandoned)
    path = Path(tempfile.mkdtemp(prefix=f"{socket.gethostname()}-{os.getpid()}-", dir=root))
    lock_fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)
    return WorkFolder(path, lock_fd)


def remove_abandoned(root: Path) -> list[Path]:
    """Remove the folders under `root` whose worker on this host is gone; returns them."""
    removed = []
    for folder in sorted(root.iterdir()):
        host, _, pid = folder.name.rpartition("-")[0].rpartition("-")
        if folder.is_dir() and host == socket.gethostname() and _abandoned(folder, pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _abandoned(folder: Path, pid: str) -> bool:
    try:
        lock_fd = os.open(folder / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:
        # Made but not locked yet: a worker starting right now, or one that died in between.
        return pid.isdigit() and not _running(int(pid))
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # its worker still holds the lock
    finally:
        os.close(lock_fd)
    return True


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the pid now belongs to another user's process
        return True
    return True
