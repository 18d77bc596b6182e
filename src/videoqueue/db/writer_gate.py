"""SQLite's writers, across threads and processes, take turns without SQLite's back-off.

SQLite lets one transaction write at a time. A writer that finds the database locked waits in
SQLite's busy handler, which sleeps and retries (1, 2, 5, … up to 100 ms a try): a process
whose writes are short and frequent (an API under load) holds the lock so often that another
process (a worker claiming a job) keeps waking to find it taken, and waits tens of ms for a
lock that is free most of the time. So each write transaction first takes its turn on an
exclusive `flock` of a file beside the database, looking again within a millisecond while
another process holds it (the kernel drops a dead holder's lock), and for no longer than
SQLite's own busy timeout. The threads of one process queue on a thread lock first, as one
open file's `flock` is shared by all of them.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path
from types import TracebackType

LOCK_SUFFIX = "-writer.lock"
"""The lock file sits beside the database: `<database>-writer.lock`."""
FIRST_PAUSE_S = 0.0002
LONGEST_PAUSE_S = 0.001
"""A waiting writer looks again after 0.2 ms, then after twice as long each time, up to 1 ms
(SQLite's busy handler goes up to 100 ms)."""


class WriterGateTimeout(TimeoutError):
    """No turn to write came within the wait (as SQLite's "database is locked")."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"database is locked: no turn to write within {seconds:g} s")


class WriterGate:
    """Held by each write transaction of one `Database` for as long as it runs."""

    def __init__(self, lock_path: Path | None, wait_seconds: float) -> None:
        self._lock_path = lock_path
        self._wait_seconds = wait_seconds
        self._threads = threading.RLock()
        self._depth = 0
        self._file: int | None = None
        self._file_pid = 0

    def __enter__(self) -> None:
        self._threads.acquire()
        try:
            if self._depth == 0 and self._lock_path is not None:
                self._take_turn(self._descriptor())
        except BaseException:
            self._threads.release()
            raise
        self._depth += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._file is not None:
                fcntl.flock(self._file, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _take_turn(self, descriptor: int) -> None:
        deadline = time.monotonic() + self._wait_seconds
        pause = FIRST_PAUSE_S
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WriterGateTimeout(self._wait_seconds) from None
            time.sleep(pause)
            pause = min(2 * pause, LONGEST_PAUSE_S)

    def _descriptor(self) -> int:
        """This process's own open file: a descriptor inherited across `fork` shares its lock
        with the parent, so a child opens the file again."""
        assert self._lock_path is not None
        if self._file is None or self._file_pid != os.getpid():
            # Read-only is enough for `flock`, so processes of other users who share the
            # database (an API and its workers, say) can each lock the one file.
            flags = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC
            self._file = os.open(self._lock_path, flags, 0o644)
            self._file_pid = os.getpid()
        return self._file

    def close(self) -> None:
        if self._file is not None and self._file_pid == os.getpid():
            os.close(self._file)
        self._file = None
