"""The worker loop: claim a job under a lease, run its engine, store the MP4, settle the job.

Engines are set up first; a worker claims only jobs of engines that are ready, so an engine
that cannot load here leaves its jobs queued for another worker (and is set up again on an
interval, in a background thread, while the other engines' jobs go on). A heartbeat thread
renews the lease while the engine works (`videoqueue.jobs.heartbeat`); when the lease is no
longer ours (the owner cancelled the job) the engine is told to stop. If this process dies,
the lease lapses and another worker claims the job again (up to `max_attempts`); a job whose
last attempt lapses is failed and refunded by whichever worker notices first. A job that ran
upstream has its upstream job released once it ended (`videoqueue.jobs.upstream_release`).
Beside the loop, a thread sends the webhook outbox (`videoqueue.webhooks.sender`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from functools import partial
from pathlib import Path

from videoqueue import metrics
from videoqueue.billing.ledger import refund
from videoqueue.clock import Clock
from videoqueue.db.dialect import JobWaiter
from videoqueue.db.session import Database
from videoqueue.delivery.inputs import InputLinks
from videoqueue.engines.base import Engine, EngineError, JobCancelled, JobInput, UpstreamJob
from videoqueue.engines.isolation import EngineCrashed
from videoqueue.engines.lifecycle import RunLimits, WarmEngine, as_warm
from videoqueue.fleet.models import ENGINE_READY
from videoqueue.jobs import store
from videoqueue.jobs.failure import Failure
from videoqueue.jobs.heartbeat import Heartbeat, Lease
from videoqueue.jobs.models import Job
from videoqueue.jobs.reaper import expire_media, reap
from videoqueue.jobs.upstream_release import release_upstream_jobs
from videoqueue.jobs.workdir import job_folder
from videoqueue.logs import log_fields
from videoqueue.storage.base import Storage
from videoqueue.storage.layout import output_key
from videoqueue.webhooks.sender import WebhookSender
from videoqueue.webhooks.terms import WebhookTerms

log = logging.getLogger(__name__)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _JobProgress:
    """A running job's progress callback: each fraction goes to its lease's next renewal; an
    upstream job the engine started is stored at once, in its own transaction."""

    def __init__(self, worker: Worker, lease: Lease) -> None:
        self.worker = worker
        self.lease = lease
        self.recorded = False
        """Whether the engine started an upstream job for this attempt."""

    def __call__(self, fraction: float) -> None:
        self.lease.progress = max(0.0, min(1.0, fraction))

    def record_upstream(self, upstream: UpstreamJob) -> None:
        w, job_id = self.worker, self.lease.job_id
        with w.db.transaction() as session:
            kept = store.record_upstream_job(
                session, job_id=job_id, worker_id=w.worker_id, upstream=upstream
            )
        self.recorded = True
        if not kept:
            raise JobCancelled()
        log.info("job %s runs upstream as %s", job_id, upstream.queue_id)


SETUP_JOIN_S = 5.0
"""How long closing a worker waits for an engine's setup in the background to end."""


def _setup_state(engine: WarmEngine) -> str:
    if engine.ready:
        return ENGINE_READY
    return f"failed: {engine.setup_error}" if engine.setup_error else "not set up"


class Worker:
    """Claims and runs jobs for the engines it has that are ready."""

    def __init__(
        self,
        *,
        db: Database,
        storage: Storage,
        engines: Mapping[str, Engine | WarmEngine],
        clock: Clock,
        lease_seconds: float,
        heartbeat_seconds: float,
        worker_id: str | None = None,
        setup_timeout_seconds: float = 600.0,
        setup_retry_seconds: float = 60.0,
        cancel_grace_seconds: float = 10.0,
        retention: timedelta | None = None,
        webhooks: WebhookTerms | None = None,
        input_links: InputLinks | None = None,
    ) -> None:
        self.db = db
        self.storage = storage
        self.engines = {name: as_warm(engine) for name, engine in engines.items()}
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.worker_id = worker_id or new_worker_id()
        self.setup_timeout_seconds = setup_timeout_seconds
        self.setup_retry_seconds = setup_retry_seconds
        self.cancel_grace_seconds = cancel_grace_seconds
        self.retention = retention
        self.input_links = input_links
        """Signs the links to each job's inputs in its `JobInput` (none without it)."""
        self.webhooks: WebhookSender | None = None
        """Sends the webhook outbox beside the job loop (none without `webhooks` terms)."""
        if webhooks is not None:
            self.webhooks = WebhookSender(
                db=db, clock=clock, terms=webhooks, worker_id=self.worker_id
            )
        self.heartbeat = Heartbeat(
            db=db,
            worker_id=self.worker_id,
            clock=clock,
            lease_seconds=lease_seconds,
            interval=heartbeat_seconds,
        )
        self.current_job_id: str | None = None
        """The job this worker runs now (read by its presence heartbeat)."""
        self._retry_setup_at: dict[str, float] = {}
        self._setups: dict[str, threading.Thread] = {}
        """Setups retried in the background, by engine: none of them holds up the loop."""

    def set_up_engines(self) -> list[str]:
        """Set up each engine that is not ready: at once the first time and after its child
        was replaced; in the background, once its retry is due, after a failed setup (so the
        other engines' jobs go on meanwhile). The names of those ready."""
        for name, engine in self.engines.items():
            retry = self._setups.get(name)
            if retry is not None:
                if retry.is_alive():
                    continue
                del self._setups[name]
                self._after_setup(name, engine)
            if engine.ready or time.monotonic() < self._retry_setup_at.get(name, 0.0):
                continue
            if name in self._retry_setup_at:
                self._setups[name] = threading.Thread(
                    target=engine.setup,
                    args=(self.setup_timeout_seconds,),
                    daemon=True,
                    name=f"setup-{name}",
                )
                self._setups[name].start()
                continue
            engine.setup(self.setup_timeout_seconds)
            self._after_setup(name, engine)
        return list(self._ready_engines())

    def _ready_engines(self) -> dict[str, WarmEngine]:
        return {
            name: engine
            for name, engine in self.engines.items()
            if engine.ready and name not in self._setups
        }

    def _after_setup(self, name: str, engine: WarmEngine) -> None:
        if engine.ready:
            self._retry_setup_at.pop(name, None)
            log.info("engine %s ready", name)
            return
        self._retry_setup_at[name] = time.monotonic() + self.setup_retry_seconds
        log.error(
            "engine %s FAILED to set up, its jobs are left to other workers "
            "(trying again in %g s): %s",
            name,
            self.setup_retry_seconds,
            engine.setup_error,
        )

    def engine_states(self) -> dict[str, str]:
        """Each engine's setup state: `ready`, `setting up` (again, in the background),
        `failed: <why>`, or `not set up`."""
        return {
            name: "setting up" if name in self._setups else _setup_state(engine)
            for name, engine in self.engines.items()
        }

    def run_forever(self, stop: threading.Event, poll_seconds: float) -> None:
        """Run jobs until `stop` is set, and send the webhook outbox in a thread beside."""
        if self.webhooks is not None:
            self.webhooks.start(stop)
        waiter = JobWaiter(self.db.engine)
        # Lapsed leases are looked for twice a lease: a lost job fails within 1.5 leases.
        next_reap = time.monotonic()
        try:
            while not stop.is_set():
                metrics.worker_seen(self.worker_id)
                try:
                    if time.monotonic() >= next_reap:
                        self.reaper_step()
                        next_reap = time.monotonic() + self.lease_seconds / 2
                    worked = not stop.is_set() and self.run_once()
                except Exception:
                    log.exception("worker loop error")
                    worked = False
                if not worked:
                    waiter.wait(poll_seconds, stop)
        finally:
            waiter.close()
            self.close()

    def reaper_step(self) -> None:
        """The reaper step: fail the jobs whose last lease lapsed, then, under a retention,
        expire one batch of old media (each in its own transaction), then release one batch
        of upstream jobs of ended jobs, for the engines ready here."""
        with self.db.transaction() as session:
            reap(session, clock=self.clock)
        if self.retention is not None:
            with self.db.transaction() as session:
                expire_media(session, self.storage, clock=self.clock, retention=self.retention)
        release_upstream_jobs(self.db, self._ready_engines(), clock=self.clock)

    def release_on_shutdown(self) -> list[str]:
        """Hand the job this worker runs back to the queue, its attempt not counted, because the
        worker is stopping before the job could finish. Safe to call from another thread."""
        with self.db.transaction() as session:
            return store.release_for_shutdown(session, worker_id=self.worker_id)

    def run_once(self) -> bool:
        """Claim one job for a ready engine and take it to an end; False when nothing was
        runnable."""
        ready = self.set_up_engines()
        if not ready:
            return False
        with self.db.transaction() as session:
            job = store.claim_next_job(
                session,
                worker_id=self.worker_id,
                engines=ready,
                clock=self.clock,
                lease_seconds=self.lease_seconds,
            )
            if job is None:
                return False
        self.current_job_id = job.id
        try:
            with log_fields(job_id=job.id):
                log.info("job %s (%s) claimed, attempt %d", job.id, job.model, job.attempts)
                self._run(job)
        finally:
            self.current_job_id = None
        return True

    def _run(self, job: Job) -> None:
        lease = self.heartbeat.hold(job.id)
        progress = _JobProgress(self, lease)
        try:
            self._attempt(job, progress)
        finally:
            # `_attempt` lets go of the lease once the engine is done; this covers what
            # failed before it ran (the job's folder could not be made).
            self.heartbeat.release(lease)
        if job.upstream is not None or progress.recorded:
            # Now, if the job has ended (not if it went back to the queue, or to another
            # worker); else the sweep does it once it ends.
            release_upstream_jobs(self.db, self._ready_engines(), clock=self.clock, job_id=job.id)

    def _attempt(self, job: Job, progress: _JobProgress) -> None:
        lease = progress.lease
        try:
            with job_folder(job.id) as tmp:
                work = Path(tmp)
                output = work / "output.mp4"
                try:
                    job_input = self._job_input(job, work)
                    limits = RunLimits(
                        max_run_seconds=job.job_spec.max_run_seconds,
                        cancel=lease.lost,
                        cancel_grace_seconds=self.cancel_grace_seconds,
                    )
                    self.engines[job.engine].run(job_input, output, progress, limits)
                finally:
                    self.heartbeat.release(lease)
                if lease.lost.is_set():
                    log.warning("job %s: lease lost; discarding the result", job.id)
                    return
                size = self.storage.put_file(output_key(job.id), output)
                self._settle(job, output_bytes=size)
        except JobCancelled:
            log.info("job %s: no longer ours (cancelled); its engine stopped", job.id)
        except EngineCrashed as exc:
            log.warning("job %s: %s", job.id, exc.message)
            self._retry_or_fail(job, exc)
        except EngineError as exc:
            log.warning("job %s failed: %s", job.id, exc.message)
            self._settle(job, error=exc)
        except Exception as exc:
            log.exception("job %s crashed", job.id)
            self._settle(job, error=EngineError(f"{type(exc).__name__}: {exc}"))

    def _retry_or_fail(self, job: Job, crash: EngineCrashed) -> None:
        """After the engine's process died: another attempt if any is left, else fail (refunded)."""
        with self.db.transaction() as session:
            owned = store.owned_running_job(session, job_id=job.id, worker_id=self.worker_id)
            if owned is None or owned.attempts >= owned.max_attempts:
                attempts_left = False
            else:
                store.release_job(owned)
                attempts_left = True
        if not attempts_left:
            self._settle(job, error=crash)

    def close(self) -> None:
        """Stop the engines' child processes (one still being set up in the background after
        `SETUP_JOIN_S` is left to end with this process: its child is a daemon)."""
        for name, engine in self.engines.items():
            setup = self._setups.pop(name, None)
            if setup is not None:
                setup.join(SETUP_JOIN_S)
                if setup.is_alive():
                    continue
            engine.close()

    def _settle(
        self, job: Job, *, output_bytes: int | None = None, error: EngineError | None = None
    ) -> None:
        """End the claimed `job`: completed with its stored output, or failed (refunded where
        the failure says so); nothing if its lease is no longer this worker's."""
        failure = None if error is None else Failure.of(error)
        refunded = False
        with self.db.transaction() as session:
            if failure is None:
                assert output_bytes is not None
                ours = store.complete_owned_job(
                    session,
                    job_id=job.id,
                    worker_id=self.worker_id,
                    output_key=output_key(job.id),
                    output_bytes=output_bytes,
                    clock=self.clock,
                )
            else:
                owned = store.owned_running_job(session, job_id=job.id, worker_id=self.worker_id)
                ours = owned is not None
                if owned is not None:
                    store.fail_job(session, owned, failure=failure, clock=self.clock)
                    if failure.refunded:
                        note = failure.message[:500]
                        refunded = (
                            refund(session, job_id=job.id, clock=self.clock, note=note) is not None
                        )
        if not ours:
            log.warning("job %s is no longer ours; result dropped", job.id)
            return
        if self.webhooks is not None and job.webhook_url is not None:
            self.webhooks.wake()  # the job's delivery goes now, not at the sender's next poll
        kind = None if failure is None else failure.kind.value
        metrics.job_ended(job.engine, job.started_at, self.clock.now(), kind)
        if refunded:
            metrics.refunded("failed")

    def _job_input(self, job: Job, work: Path) -> JobInput:
        def fetch(key: str) -> Path:
            # Input keys end in the file's SHA-256: one local copy serves every role using it.
            path = work / key.rsplit("/", 1)[-1]
            if not path.exists():
                self.storage.fetch_to(key, path)
            return path

        spec = job.job_spec
        media_urls = None
        if self.input_links is not None:
            # No attempt runs past its time limit, so no link of it need outlive that.
            expires_at = self.clock.now() + timedelta(seconds=spec.max_run_seconds)
            link = partial(self.input_links.url, job.id, expires_at=expires_at)
            media_urls = spec.media.map(link)
        return spec.engine_input(
            job_id=job.id,
            model=job.model,
            media=spec.media.map(fetch),
            media_urls=media_urls,
            upstream=job.upstream,
        )
