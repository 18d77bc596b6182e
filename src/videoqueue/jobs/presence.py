"""A worker's presence in the `workers` table: registered at start, written on every
heartbeat (idle or not), marked `stopping` as soon as it is told to stop, and removed when it
stops cleanly. A worker killed outright leaves its row, which turns `lost` once its heartbeat
is older than the fleet's `lost_after_seconds`, and is deleted by a worker that starts
after `forget_after_seconds`."""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from videoqueue.fleet import store
from videoqueue.fleet.models import WorkerState
from videoqueue.fleet.terms import FleetTerms

if TYPE_CHECKING:
    from videoqueue.jobs.worker import Worker

log = logging.getLogger(__name__)


class Presence(threading.Thread):
    """Keeps `worker`'s row up to date every `terms.heartbeat_seconds` until `close`; once
    `stopping` (the worker's stop event) is set, the row says so (call `beat` to say it at
    once)."""

    def __init__(
        self,
        worker: Worker,
        *,
        terms: FleetTerms,
        stopping: threading.Event,
        device: str | None = None,
    ) -> None:
        super().__init__(daemon=True, name="presence")
        self.worker = worker
        self.terms = terms
        self.stopping = stopping
        self.device = device
        self._closed = threading.Event()
        self._writing = threading.Lock()
        """Held by each write of the row, so that no beat lands after `close` removed it."""

    def register(self) -> None:
        """Insert the worker's row (in the caller's thread: it is listed before it starts)."""
        w = self.worker
        now = w.clock.now()
        with w.db.transaction() as session:
            store.prune_lost_workers(
                session, silent_since=now - timedelta(seconds=self.terms.forget_after_seconds)
            )
            store.register_worker(
                session,
                worker_id=w.worker_id,
                host=socket.gethostname(),
                pid=os.getpid(),
                device=self.device,
                engines=w.engine_states(),
                state=self._state(),
                now=now,
            )

    def _state(self) -> WorkerState:
        return WorkerState.STOPPING if self.stopping.is_set() else WorkerState.RUNNING

    def run(self) -> None:
        while not self._closed.wait(self.terms.heartbeat_seconds):
            try:
                self.beat()
            except Exception:
                log.exception("the worker's heartbeat in the workers table failed; retrying")

    def beat(self) -> None:
        """Write the worker's engines, job and state now (registering it again if its row was
        pruned while this process was paused); nothing once closed (a beat from another thread,
        as the shutdown's, must not bring back the row `close` removed)."""
        with self._writing:
            if self._closed.is_set():
                return
            w = self.worker
            now = w.clock.now()
            with w.db.transaction() as session:
                written = store.record_heartbeat(
                    session,
                    worker_id=w.worker_id,
                    engines=w.engine_states(),
                    current_job_id=w.current_job_id,
                    state=self._state(),
                    now=now,
                )
            if not written:
                self.register()

    def close(self) -> None:
        """Stop beating and delete the row: the worker stopped cleanly."""
        self._closed.set()
        if self.is_alive():
            self.join()
        w = self.worker
        try:
            with self._writing, w.db.transaction() as session:
                store.remove_worker(session, w.worker_id)
        except Exception:
            log.exception("could not remove this worker from the workers table; it turns lost")
