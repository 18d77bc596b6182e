"""Worker processes: the entry point of each, built from the settings, and their supervisor."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from videoqueue import cpus, heap, metrics
from videoqueue.catalog.catalog import load_catalog
from videoqueue.clock import SystemClock
from videoqueue.db.session import Database
from videoqueue.delivery.inputs import InputLinks
from videoqueue.delivery.secret import load_link_secret
from videoqueue.engines.registry import UnknownEngine, build_engines, engine_factories
from videoqueue.fleet.terms import FleetTerms
from videoqueue.jobs.presence import Presence
from videoqueue.jobs.workdir import process_work_folder
from videoqueue.jobs.worker import Worker
from videoqueue.logs import configure_logging, resolve_log_format
from videoqueue.orphans import stop_when_orphaned
from videoqueue.outbound import webhook_terms
from videoqueue.settings import Settings
from videoqueue.storage.factory import storage_from_url

log = logging.getLogger(__name__)

QUICK_EXIT_S = 10.0
MAX_RESTART_PAUSE_S = 60


def fleet_terms(settings: Settings) -> FleetTerms:
    """How often workers beat, and when one is lost or forgotten (workers and the API)."""
    return FleetTerms(
        heartbeat_seconds=settings.worker_heartbeat_seconds,
        lost_after_seconds=settings.worker_lost_after_seconds,
        forget_after_seconds=settings.worker_forget_after_seconds,
    )


def input_link_terms(settings: Settings) -> InputLinks:
    """How links to jobs' inputs are signed (by workers) and checked (by the API): with the
    download links' secret, at the public base URL."""
    secret = load_link_secret(settings.link_secret, settings.data_dir)
    return InputLinks.with_secret(secret, settings.resolved_public_base_url)


def build_worker(
    settings: Settings, engines: Sequence[str] = (), device: str | None = None
) -> Worker:
    """A worker for the named `engines` (default: every engine the catalogue binds a model
    to), each on `device` where its factory takes one (see `load_engine`)."""
    factories = engine_factories(settings.engines)
    catalog = load_catalog(settings.catalog_path, engines=factories)
    bound = {m.engine for m in catalog.models.values()}
    for name in engines:
        if name not in factories:
            raise UnknownEngine(f"no engine named {name!r}; known: {', '.join(sorted(factories))}")
        if name not in bound:
            log.warning(
                "engine %s is bound to no model in the catalogue: no job will need it", name
            )
    names = sorted(set(engines) if engines else bound)
    return Worker(
        db=Database(settings.resolved_database_url),
        storage=storage_from_url(settings.resolved_storage_url, settings.s3_config()),
        engines=build_engines(names, factories, device),
        clock=SystemClock(),
        lease_seconds=settings.lease_seconds,
        heartbeat_seconds=settings.heartbeat_seconds,
        setup_timeout_seconds=settings.engine_setup_timeout_seconds,
        setup_retry_seconds=settings.engine_setup_retry_seconds,
        cancel_grace_seconds=settings.cancel_grace_seconds,
        retention=settings.retention,
        webhooks=webhook_terms(settings),
        input_links=input_link_terms(settings),
    )


def worker_main(
    settings_json: dict[str, Any],
    parent_pid: int | None = None,
    engines: Sequence[str] = (),
    device: str | None = None,
) -> None:
    """Run one worker until SIGTERM or SIGINT (or, when supervised, its supervisor's death),
    for `engines` on `device` as `build_worker` says."""
    settings = Settings.model_validate(settings_json)
    cpus.lower_priority(settings.worker_nice)  # first: it holds for threads started after it
    log_format = resolve_log_format(settings.log_format)
    configure_logging(log_format, "%(asctime)s worker %(message)s")
    if device is not None:
        log.info("engines that take a device run on %s", device)
    run_until_stopped(
        build_worker(settings, engines, device),
        poll_seconds=settings.poll_seconds,
        grace_seconds=settings.shutdown_grace_seconds,
        fleet=fleet_terms(settings),
        parent_pid=parent_pid,
        device=device,
    )


def run_until_stopped(
    worker: Worker,
    *,
    poll_seconds: float,
    grace_seconds: float,
    fleet: FleetTerms,
    parent_pid: int | None = None,
    device: str | None = None,
) -> None:
    """Run `worker` in this process's main thread, registered in the fleet, until SIGTERM or
    SIGINT (or `parent_pid`'s death). Then it claims nothing more and has `grace_seconds` to
    finish its job; past them it hands the job back to the queue, its attempt not counted,
    and ends its engines. A clean stop removes it from the fleet."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if parent_pid is not None:
        threading.Thread(
            target=stop_when_orphaned, args=(parent_pid, stop), daemon=True, name="orphan-watch"
        ).start()
    presence = Presence(worker, terms=fleet, stopping=stop, device=device)
    presence.register()
    presence.start()
    finished = threading.Event()
    threading.Thread(
        target=_hand_back_after_grace,
        args=(worker, presence, stop, finished, grace_seconds),
        daemon=True,
        name="shutdown-grace",
    ).start()
    try:
        process_work_folder()  # now, so what dead workers left is removed at start
        worker.set_up_engines()
        states = ", ".join(f"{name} {state}" for name, state in worker.engine_states().items())
        log.info("worker %s started (engines: %s)", worker.worker_id, states)
        presence.beat()  # its engines are listed ready now, not at the next heartbeat
        heap.freeze_startup_objects()
        metrics.WORKERS_ALIVE.set(1)
        worker.run_forever(stop, poll_seconds)
    finally:
        metrics.WORKERS_ALIVE.set(0)
        finished.set()
        presence.close()


def _hand_back_after_grace(
    worker: Worker,
    presence: Presence,
    stop: threading.Event,
    finished: threading.Event,
    grace_seconds: float,
) -> None:
    stop.wait()
    try:
        presence.beat()  # the fleet sees it `stopping` at once
    except Exception:
        log.exception("could not mark this worker stopping in the workers table")
    log.info("stopping: claiming no more; a running job has %g s to finish", grace_seconds)
    if finished.wait(grace_seconds):
        return
    released = worker.release_on_shutdown()
    log.warning(
        "stopping: job %s handed back after %g s; ending the engines",
        ", ".join(released) or "(none)",
        grace_seconds,
    )
    # The engine's child dies, so the job's call returns in the main thread, which then
    # finds the job no longer its own and stops.
    for child in multiprocessing.active_children():
        child.terminate()


def restart_pause(quick_exits: int) -> int:
    """Seconds to wait before restarting a worker that died `quick_exits` times running,
    each soon after it started: 0, 1, 3, 7 … up to a minute."""
    return int(min(MAX_RESTART_PAUSE_S, 2 ** min(quick_exits, 16) - 1))


class Supervisor:
    """Keeps `count` worker processes running, replacing any that dies."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings_json = settings.model_dump(mode="json")
        self.grace_seconds = settings.shutdown_grace_seconds
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
                # A worker that dies right after starting is restarted after a growing
                # pause instead of in a tight loop (one whose engines cannot load lives on).
                lived = time.monotonic() - self._started[i]
                self._quick_exits[i] = self._quick_exits[i] + 1 if lived < QUICK_EXIT_S else 0
                pause = restart_pause(self._quick_exits[i])
                if process.pid is not None:
                    metrics.process_gone(process.pid)
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

    def stop(self, timeout: float | None = None) -> None:
        """Stop every worker: each finishes or hands back its job, and is killed past
        `timeout` (default: the workers' grace and 10 s to hand back)."""
        if timeout is None:
            timeout = self.grace_seconds + 10.0
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()  # so it starts no replacement behind our back
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
            if process.pid is not None:
                metrics.process_gone(process.pid)
