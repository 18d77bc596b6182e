"""Worker processes: the entry point of each, and the supervisor that keeps them alive."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

from videoqueue.catalog.catalog import load_catalog
from videoqueue.clock import SystemClock
from videoqueue.db.session import Database
from videoqueue.engines.registry import build_engines, engine_factories
from videoqueue.jobs.worker import Worker
from videoqueue.settings import Settings
from videoqueue.storage.factory import storage_from_url

log = logging.getLogger(__name__)

QUICK_EXIT_S = 10.0
MAX_RESTART_PAUSE_S = 60


def build_worker(settings: Settings) -> Worker:
    """A worker for every engine the catalogue binds a model to."""
    catalog = load_catalog(settings.catalog_path)
    names = sorted({m.engine for m in catalog.models.values()})
    engines = build_engines(names, engine_factories(settings.engines))
    return Worker(
        db=Database(settings.resolved_database_url),
        storage=storage_from_url(settings.resolved_storage_url),
        engines=engines,
        clock=SystemClock(),
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
    )


def stop_when_orphaned(parent_pid: int, stop: threading.Event) -> None:
    """Set `stop` once the supervising process is gone (killed before it could stop us)."""
    while not stop.wait(1.0):
        if os.getppid() != parent_pid:
            log.warning("supervisor %d is gone; stopping", parent_pid)
            stop.set()


def worker_main(settings_json: dict[str, Any], parent_pid: int | None = None) -> None:
    """Run one worker until SIGTERM or SIGINT (or, when supervised, its supervisor's death)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    settings = Settings.model_validate(settings_json)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if parent_pid is not None:
        threading.Thread(
            target=stop_when_orphaned, args=(parent_pid, stop), daemon=True, name="orphan-watch"
        ).start()
    worker = build_worker(settings)
    log.info("worker %s ready (engines: %s)", worker.worker_id, ", ".join(worker.engines))
    worker.run_forever(stop, settings.poll_seconds)


def restart_pause(quick_exits: int) -> int:
    """Seconds to wait before restarting a worker that died `quick_exits` times running,
    each soon after it started: 0, 1, 3, 7 … up to a minute."""
    return int(min(MAX_RESTART_PAUSE_S, 2 ** min(quick_exits, 16) - 1))


class Supervisor:
    """Keeps `count` worker processes running, replacing any that dies."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings_json = settings.model_dump(mode="json")
        self.count = count
        self.processes: list[BaseProcess] = []
        self._started: list[float] = []
        self._quick_exits: list[int] = []
        self._stop = threading.Event()
        self._context = multiprocessing.get_context("spawn")
        self._thread = threading.Thread(target=self._watch, daemon=True, name="supervisor")

    def _spawn(self) -> BaseProcess:
        # Not a daemon: a worker starts its engines' child processes, which daemons may not.
        # stop() ends it, and it stops by itself if this process dies.
        process = self._context.Process(
            target=worker_main, args=(self.settings_json, os.getpid()), name="videoqueue-worker"
        )
        process.start()
        return process

    def start(self) -> None:
        # One at a time, so a stop() that interrupts the start still finds those started.
        for _ in range(self.count):
            self.processes.append(self._spawn())
            self._started.append(time.monotonic())
            self._quick_exits.append(0)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for i, process in enumerate(self.processes):
                if process.is_alive() or self._stop.is_set():
                    continue
                # A worker that dies right after starting (an engine that cannot load, say)
                # is restarted after a growing pause instead of in a tight loop.
                lived = time.monotonic() - self._started[i]
                self._quick_exits[i] = self._quick_exits[i] + 1 if lived < QUICK_EXIT_S else 0
                pause = restart_pause(self._quick_exits[i])
                log.warning(
                    "worker pid %s exited (%s); starting a new one in %d s",
                    process.pid,
                    process.exitcode,
                    pause,
                )
                if self._stop.wait(pause):
                    return
                self.processes[i] = self._spawn()
                self._started[i] = time.monotonic()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()  # so it starts no replacement behind our back
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(timeout)
            if process.is_alive():
                process.kill()
