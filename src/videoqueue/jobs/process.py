"""Worker processes: the entry point of each, and the supervisor that keeps them alive."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from multiprocessing.process import BaseProcess
from typing import Any

from videoqueue.catalog.catalog import load_catalog
from videoqueue.clock import SystemClock
from videoqueue.db.session import Database
from videoqueue.engines.registry import build_engines
from videoqueue.jobs.worker import Worker
from videoqueue.settings import Settings
from videoqueue.storage.factory import storage_from_url

log = logging.getLogger(__name__)


def build_worker(settings: Settings) -> Worker:
    """A worker for every engine the catalogue binds a model to."""
    catalog = load_catalog(settings.catalog_path)
    engines = build_engines(sorted({m.engine for m in catalog.models.values()}))
    return Worker(
        db=Database(settings.resolved_database_url),
        storage=storage_from_url(settings.resolved_storage_url),
        engines=engines, clock=SystemClock(), lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
    )


def worker_main(settings_json: dict[str, Any]) -> None:
    """Run one worker until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    settings = Settings.model_validate(settings_json)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    worker = build_worker(settings)
    log.info("worker %s ready (engines: %s)", worker.worker_id, ", ".join(worker.engines))
    worker.run_forever(stop, settings.poll_seconds)


class Supervisor:
    """Keeps `count` worker processes running, replacing any that dies."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings_json = settings.model_dump(mode="json")
        self.count = count
        self.processes: list[BaseProcess] = []
        self._stop = threading.Event()
        self._context = multiprocessing.get_context("spawn")
        self._thread = threading.Thread(target=self._watch, daemon=True, name="supervisor")

    def _spawn(self) -> BaseProcess:
        process = self._context.Process(target=worker_main, args=(self.settings_json,),
                                        name="videoqueue-worker", daemon=True)
        process.start()
        return process

    def start(self) -> None:
        self.processes = [self._spawn() for _ in range(self.count)]
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for i, process in enumerate(self.processes):
                if not process.is_alive() and not self._stop.is_set():
                    log.warning("worker pid %s exited (%s); starting a new one",
                                process.pid, process.exitcode)
                    self.processes[i] = self._spawn()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(timeout)
            if process.is_alive():
                process.kill()
