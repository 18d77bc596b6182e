"""The lease of the job a worker runs, renewed with the job's progress while its engine works.

One thread per worker renews it every `interval` seconds from the job's start, and switches
from one job's lease to the next: jobs run back to back keep the same thread (one started and
joined for each job cost a job that takes no time about a fifth of its worker's CPU). The
thread ends once no job has come for an interval, and a later job starts another.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from videoqueue import metrics
from videoqueue.clock import Clock
from videoqueue.db.session import Database
from videoqueue.jobs import store
from videoqueue.logs import log_fields

log = logging.getLogger(__name__)


@dataclass
class Lease:
    """One job's lease while its worker holds it."""

    job_id: str
    due: float
    """When (`time.monotonic()`) it is renewed next."""
    progress: float = 0.0
    """What the next renewal records."""
    lost: threading.Event = field(default_factory=threading.Event)
    """Set when the lease is no longer the worker's (the job was cancelled): the engine stops."""


class Heartbeat:
    """Renews the lease of the job its worker runs, one job at a time (`hold`, `release`)."""

    def __init__(
        self,
        *,
        db: Database,
        worker_id: str,
        clock: Clock,
        lease_seconds: float,
        interval: float,
    ) -> None:
        self.db = db
        self.worker_id = worker_id
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.interval = interval
        self._changed = threading.Condition()
        self._lease: Lease | None = None
        self._thread: threading.Thread | None = None
        self._renewing = threading.Lock()
        """Held while a renewal runs, so that `release` can wait one out."""

    def hold(self, job_id: str) -> Lease:
        """Renew `job_id`'s lease from now on (until `release`)."""
        lease = Lease(job_id, due=time.monotonic() + self.interval)
        with self._changed:
            self._lease = lease
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="heartbeat")
                self._thread.start()
            self._changed.notify()
        return lease

    def release(self, lease: Lease) -> None:
        """Renew `lease` no more. Once this returns no renewal of it is under way, so
        `lease.lost` says for good whether the lease was lost."""
        with self._changed:
            if self._lease is lease:
                self._lease = None
        with self._renewing:
            pass

    def _run(self) -> None:
        while (lease := self._next_due()) is not None:
            with self._renewing:
                if lease is self._lease:  # not released while this thread waited for the lock
                    self._renew(lease)
            lease.due = time.monotonic() + self.interval

    def _next_due(self) -> Lease | None:
        """The held lease once its renewal is due; None once no lease has been held for an
        interval (the thread then ends)."""
        idle_until: float | None = None
        with self._changed:
            while True:
                now = time.monotonic()
                lease = self._lease
                if lease is not None and not lease.lost.is_set():
                    idle_until = None
                    if now >= lease.due:
                        return lease
                    self._changed.wait(lease.due - now)
                    continue
                if idle_until is None:
                    idle_until = now + self.interval
                elif now >= idle_until:
                    self._thread = None
                    return None
                self._changed.wait(idle_until - now)

    def _renew(self, lease: Lease) -> None:
        metrics.worker_seen(self.worker_id)
        with log_fields(job_id=lease.job_id):
            try:
                with self.db.transaction() as session:
                    ours = store.renew_lease(
                        session,
                        job_id=lease.job_id,
                        worker_id=self.worker_id,
                        clock=self.clock,
                        lease_seconds=self.lease_seconds,
                        progress=lease.progress,
                    )
            except Exception:
                log.exception("heartbeat for job %s failed; retrying", lease.job_id)
                return
        if not ours:
            lease.lost.set()
