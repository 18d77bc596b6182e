"""Which engines the fleet can run now, for `/models`' `offline`: read in one query, and kept
for a moment so that a burst of listings costs the database one read."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from videoqueue.clock import Clock
from videoqueue.db.session import Database
from videoqueue.fleet import store

READY_ENGINES_TTL_S = 1.0


class ReadyEngines:
    """The engines some live worker (running, heard from within `lost_after_seconds`) has
    ready, at most `ttl_seconds` old."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        lost_after_seconds: float,
        ttl_seconds: float = READY_ENGINES_TTL_S,
    ) -> None:
        self.db = db
        self.clock = clock
        self.lost_after = timedelta(seconds=lost_after_seconds)
        self.ttl_seconds = ttl_seconds
        self._lock = threading.Lock()
        self._engines: frozenset[str] = frozenset()
        self._read_at: float | None = None

    def current(self) -> frozenset[str]:
        with self._lock:
            if self._read_at is None or time.monotonic() - self._read_at >= self.ttl_seconds:
                with self.db.read() as session:
                    heard_since = self.clock.now() - self.lost_after
                    self._engines = frozenset(store.ready_engines(session, heard_since=heard_since))
                self._read_at = time.monotonic()
            return self._engines
