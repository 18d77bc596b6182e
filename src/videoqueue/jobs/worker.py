"""The worker loop: claim a job under a lease, run its engine, store the MP4, settle the job.

A heartbeat thread renews the lease while the engine works. If this process dies, the
lease lapses and another worker claims the job again (up to `max_attempts`); a job whose
last attempt lapses is failed and refunded by whichever worker notices first.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from videoqueue.billing.ledger import refund
from videoqueue.clock import Clock
from videoqueue.db.dialect import JobWaiter
from videoqueue.db.session import Database
from videoqueue.engines.base import Engine, EngineError, JobInput, ProviderContentPolicy
from videoqueue.engines.isolation import EngineCrashed, IsolatedEngine
from videoqueue.jobs import store
from videoqueue.jobs.models import Job
from videoqueue.jobs.shutdown import release_for_shutdown
from videoqueue.jobs.submit import output_key
from videoqueue.jobs.workdir import job_folder
from videoqueue.storage.base import Storage

log = logging.getLogger(__name__)

INFERENCE_FAILED = {"error": "Inference processing failed"}
PATH_FIELDS = {
    "image_url": "image_path",
    "end_image_url": "end_image_path",
    "audio_url": "audio_path",
    "video_url": "video_path",
}


def failure_body(error: EngineError) -> dict[str, Any]:
    """What retrieve answers for a job that failed with `error`, saying if it was refunded."""
    if isinstance(error, ProviderContentPolicy):
        # Venice's ProviderContentPolicyError (spec §6).
        message = error.message
        if error.refundable:
            message += " Credits have been refunded."
        if error.recommended_model:
            message += f" Try using {error.recommended_model} instead."
        body: dict[str, Any] = {
            "message": message,
            "type": "provider_content_policy",
            "credits_refunded": error.refundable,
        }
        if error.recommended_model:
            body["recommended_model"] = error.recommended_model
        return {"error": body}
    return {**INFERENCE_FAILED, "details": error.message, "credits_refunded": error.refundable}


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class _Heartbeat(threading.Thread):
    """Renews one job's lease every `interval` seconds and records its progress."""

    def __init__(self, worker: Worker, job_id: str) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.worker = worker
        self.job_id = job_id
        self.progress = 0.0
        self.lost = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        w = self.worker
        while not self._stop_event.wait(w.heartbeat_seconds):
            try:
                with w.db.transaction() as session:
                    ok = store.renew_lease(
                        session,
                        job_id=self.job_id,
                        worker_id=w.worker_id,
                        clock=w.clock,
                        lease_seconds=w.lease_seconds,
                        progress=self.progress,
                    )
            except Exception:
                log.exception("heartbeat for job %s failed; retrying", self.job_id)
                continue
            if not ok:
                self.lost = True
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


class Worker:
    """Claims and runs jobs for the engines it has."""

    def __init__(
        self,
        *,
        db: Database,
        storage: Storage,
        engines: Mapping[str, Engine],
        clock: Clock,
        lease_seconds: float,
        heartbeat_seconds: float,
        worker_id: str | None = None,
    ) -> None:
        self.db = db
        self.storage = storage
        self.engines = engines
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.worker_id = worker_id or new_worker_id()

    def run_forever(self, stop: threading.Event, poll_seconds: float) -> None:
        waiter = JobWaiter(self.db.engine)
        try:
            while not stop.is_set():
                try:
                    self.fail_exhausted()
                    worked = not stop.is_set() and self.run_once()
                except Exception:
                    log.exception("worker loop error")
                    worked = False
                if not worked:
                    waiter.wait(poll_seconds, stop)
        finally:
            waiter.close()
            self.close()

    def release_on_shutdown(self) -> list[str]:
        """Hand the job this worker runs back to the queue, its attempt not counted, because the
        worker is stopping before the job could finish. Safe to call from another thread."""
        with self.db.transaction() as session:
            return release_for_shutdown(session, worker_id=self.worker_id)

    def fail_exhausted(self) -> int:
        """Fail and refund jobs whose last attempt's lease lapsed; returns how many."""
        with self.db.transaction() as session:
            jobs = store.exhausted_jobs(session, clock=self.clock)
            for job in jobs:
                body = {
                    **INFERENCE_FAILED,
                    "details": "the worker running this job was lost",
                    "credits_refunded": True,
                }
                store.fail_job(job, status=500, body=body, clock=self.clock)
                refund(
                    session, job_id=job.id, clock=self.clock, note="worker lost on the last attempt"
                )
        return len(jobs)

    def run_once(self) -> bool:
        """Claim one job and take it to an end; False when nothing was runnable."""
        with self.db.transaction() as session:
            job = store.claim_next_job(
                session,
                worker_id=self.worker_id,
                engines=list(self.engines),
                clock=self.clock,
                lease_seconds=self.lease_seconds,
            )
            if job is None:
                return False
            session.expunge(job)
        log.info("job %s (%s) claimed, attempt %d", job.id, job.model, job.attempts)
        self._run(job)
        return True

    def _run(self, job: Job) -> None:
        heartbeat = _Heartbeat(self, job.id)
        heartbeat.start()
        try:
            with job_folder(job.id) as tmp:
                work = Path(tmp)
                job_input = self._job_input(job, work)
                output = work / "output.mp4"

                def progress(fraction: float) -> None:
                    heartbeat.progress = max(0.0, min(1.0, fraction))

                self.engines[job.engine].generate(job_input, output, progress)
                heartbeat.stop()
                if heartbeat.lost:
                    log.warning("job %s: lease lost; discarding the result", job.id)
                    return
                size = self.storage.put_file(output_key(job.id), output)
                self._settle(job.id, output_bytes=size)
        except EngineCrashed as exc:
            heartbeat.stop()
            log.warning("job %s: %s", job.id, exc.message)
            self._retry_or_fail(job.id, exc)
        except EngineError as exc:
            heartbeat.stop()
            log.warning("job %s failed: %s", job.id, exc.message)
            self._settle(job.id, error=exc)
        except Exception as exc:
            heartbeat.stop()
            log.exception("job %s crashed", job.id)
            self._settle(job.id, error=EngineError(f"{type(exc).__name__}: {exc}"))

    def _retry_or_fail(self, job_id: str, crash: EngineCrashed) -> None:
        """After the engine's process died: another attempt if any is left, else fail (refunded)."""
        with self.db.transaction() as session:
            job = store.owned_running_job(session, job_id=job_id, worker_id=self.worker_id)
            if job is None or job.attempts >= job.max_attempts:
                attempts_left = False
            else:
                store.release_job(job)
                attempts_left = True
        if not attempts_left:
            self._settle(job_id, error=crash)

    def close(self) -> None:
        """Stop the engines' child processes."""
        for engine in self.engines.values():
            if isinstance(engine, IsolatedEngine):
                engine.close()

    def _settle(
        self, job_id: str, *, output_bytes: int | None = None, error: EngineError | None = None
    ) -> None:
        with self.db.transaction() as session:
            job = store.owned_running_job(session, job_id=job_id, worker_id=self.worker_id)
            if job is None:
                log.warning("job %s is no longer ours; result dropped", job_id)
                return
            if error is None:
                assert output_bytes is not None
                store.complete_job(
                    job, output_key=output_key(job_id), output_bytes=output_bytes, clock=self.clock
                )
                return
            store.fail_job(job, status=error.status, body=failure_body(error), clock=self.clock)
            if error.refundable:
                refund(session, job_id=job_id, clock=self.clock, note=error.message[:500])

    def _job_input(self, job: Job, work: Path) -> JobInput:
        def fetch(key: str) -> Path:
            # Input keys end in the file's SHA-256: one local copy serves every field using it.
            path = work / key.rsplit("/", 1)[-1]
            if not path.exists():
                self.storage.fetch_to(key, path)
            return path

        paths: dict[str, Any] = {}
        for field, target in PATH_FIELDS.items():
            if isinstance(job.inputs.get(field), str):
                paths[target] = fetch(job.inputs[field])
        references = [fetch(k) for k in job.inputs.get("reference_image_urls", [])]
        p = job.params
        return JobInput(
            job_id=job.id,
            model=job.model,
            prompt=p.get("prompt", ""),
            negative_prompt=p.get("negative_prompt", ""),
            width=p["width"],
            height=p["height"],
            fps=p["fps"],
            duration_s=p.get("duration_s") or 5.0,
            audio=bool(p.get("audio")),
            seed=p["seed"],
            reference_image_paths=tuple(references),
            upscale_factor=p.get("upscale_factor") or 2,
            params=p,
            **paths,
        )
