"""A real `videoqueue serve` process on 127.0.0.1 with its own data, database and accounts,
which a test can kill outright and start again on the same port and data."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import av
import httpx

from tests.conftest import wait_until
from tests.test_cli_serve import REPO, descendants, free_port
from videoqueue.auth.keys import create_key
from videoqueue.auth.models import KeyKind
from videoqueue.billing.ledger import create_account, top_up, verify_ledger
from videoqueue.billing.models import Account, AccountKind
from videoqueue.clock import SystemClock
from videoqueue.db.migrate import upgrade
from videoqueue.db.session import Database
from videoqueue.jobs.failure import WORKER_LOST
from videoqueue.jobs.models import Job
from videoqueue.jobs.states import JobState

BALANCE_MICROS = 10_000_000


@dataclass
class VideoqueueServer:
    """One server: `start` it, `kill` it (every process of it, SIGKILL), `start` it again."""

    folder: Path
    catalog: str
    engines: dict[str, str]
    environment: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.data = self.folder / "data"
        self.data.mkdir(parents=True)
        url = f"sqlite:///{self.data / 'videoqueue.db'}"
        upgrade(url)
        self.db = Database(url)
        clock = SystemClock()
        with self.db.transaction() as session:
            account = create_account(session, kind=AccountKind.STANDARD, clock=clock)
            top_up(session, account_id=account.id, micros=BALANCE_MICROS, clock=clock, note="t")
            _, self.key = create_key(
                session, account_id=account.id, clock=clock, kind=KeyKind.INFERENCE
            )
            self.account_id = account.id
        (self.folder / "catalog.toml").write_text(self.catalog)
        self.log = self.folder / "serve.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "VIDEOQUEUE_DATA_DIR": str(self.data),
            "VIDEOQUEUE_PORT": str(self.port),
            "VIDEOQUEUE_API_PROCESSES": "1",
            "VIDEOQUEUE_WORKERS": "1",
            "VIDEOQUEUE_LEASE_SECONDS": "2",
            "VIDEOQUEUE_HEARTBEAT_SECONDS": "0.3",
            "VIDEOQUEUE_POLL_SECONDS": "0.1",
            # The access log is counted line by line: one line per request.
            "VIDEOQUEUE_LOG_FORMAT": "text",
            "VIDEOQUEUE_CATALOG_PATH": str(self.folder / "catalog.toml"),
            "VIDEOQUEUE_ENGINES": json.dumps(self.engines),
            **self.environment,
        }
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "videoqueue.cli", "serve"], env=env, stdout=out, stderr=out
            )
        wait_until(self._answers, timeout=60)

    def _answers(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()
        try:
            return httpx.get(f"{self.base_url}/models", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """Every process of the server, at once: nothing is shut down cleanly."""
        if self.process is None:
            return
        for pid in descendants(self.process.pid):
            os.kill(pid, signal.SIGKILL)
        self.process.kill()
        self.process.wait()
        self.process = None

    def requests(self, route: str) -> int:
        """How many requests to `route` (method and route) it has answered."""
        return self.log.read_text().count(f"videoqueue.api.requests {route} ")

    def jobs(self) -> list[Job]:
        with self.db.transaction() as session:
            jobs = list(session.query(Job).all())
            session.expunge_all()
            return jobs

    def balance_micros(self) -> int:
        with self.db.transaction() as session:
            account = session.get(Account, self.account_id)
            assert account is not None
            return account.balance_micros

    def ledger_consistent(self) -> bool:
        with self.db.transaction() as session:
            return verify_ledger(session).consistent


RELAY_MODEL = "relay-t2v"
RELAY_REQUEST = {"duration": "1s", "resolution": "256p", "aspect_ratio": "1:1"}
"""A 1 s, 256p, 1:1 job: what `Relay.queue` sends, and what `assert_mp4_of_the_request` checks."""


@dataclass
class Relay:
    ours: VideoqueueServer
    upstream: VideoqueueServer
    gate: Path
    """The upstream holds every job until this file exists."""
    started_by: str
    """The method and route, in the upstream's request log, of the request that starts one of
    its jobs."""
    released_by: str
    """… and of the request that releases one (completes or deletes it)."""

    def queue(self, prompt: str, model: str = RELAY_MODEL, **extra: Any) -> str:
        response = httpx.post(
            f"{self.ours.base_url}/video/queue",
            json={**RELAY_REQUEST, "model": model, "prompt": prompt, **extra},
            headers={"Authorization": f"Bearer {self.ours.key}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["queue_id"])

    def our_job(self, job_id: str) -> Job:
        (job,) = [j for j in self.ours.jobs() if j.id == job_id]
        return job

    def recorded_upstream(self, job_id: str) -> Job:
        job: Job = wait_until(
            lambda: (job := self.our_job(job_id)).upstream_queue_id and job, timeout=120
        )
        return job

    def kill_each_attempt(self, job_id: str, attempts: int) -> None:
        """SIGKILL the worker of each of the job's first `attempts` attempts once it polls
        the upstream job."""
        killed: list[str | None] = [None]
        for attempt in range(1, attempts + 1):

            def polling(attempt: int = attempt) -> Job | None:
                job = self.our_job(job_id)
                running = job.attempts == attempt and job.upstream_queue_id is not None
                return job if running and job.lease_owner not in killed else None

            owner = wait_until(polling, timeout=120).lease_owner
            os.kill(int(owner.split(":")[1]), signal.SIGKILL)
            killed.append(owner)

    def upstream_job_ended(self) -> Job:
        """The upstream's one job, once it has ended there."""

        def ended() -> Job | None:
            (job,) = self.upstream.jobs()
            return job if job.finished_at is not None else None

        job: Job = wait_until(ended, timeout=60)
        return job

    def released(self, job_id: str) -> Job:
        """Our job, once its upstream job is recorded as released."""
        job: Job = wait_until(
            lambda: (job := self.our_job(job_id)).upstream_released_at and job, timeout=60
        )
        return job

    def assert_released_upstream(self, job: Job) -> None:
        """`job`'s upstream job ended there without a video, released once, and ours records
        it; the upstream made one job for it, and both ledgers verify."""
        upstream_job = self.upstream_job_ended()
        assert upstream_job.id == job.upstream_queue_id
        assert upstream_job.state in (JobState.CANCELLED, JobState.DELETED)
        assert upstream_job.output_key is None
        assert self.released(job.id).upstream_released_at is not None
        wait_until(lambda: self.upstream.requests(self.released_by) == 1)
        self.assert_one_upstream_job_and_books_balanced(job)

    def finished(self, job_id: str) -> Job:
        def ended() -> Job | None:
            job = self.our_job(job_id)
            return job if job.state in (JobState.COMPLETED, JobState.FAILED) else None

        job: Job = wait_until(ended, timeout=120)
        return job

    def retrieve(self, job_id: str, model: str = RELAY_MODEL) -> httpx.Response:
        return httpx.post(
            f"{self.ours.base_url}/video/retrieve",
            json={"model": model, "queue_id": job_id},
            headers={"Authorization": f"Bearer {self.ours.key}"},
            timeout=30,
        )

    def assert_one_upstream_job_and_books_balanced(self, job: Job) -> None:
        (upstream_job,) = self.upstream.jobs()
        assert upstream_job.id == job.upstream_queue_id
        # Started once: a later attempt resumed the stored job, not an idempotent replay.
        assert self.upstream.requests(self.started_by) == 1
        assert self.ours.ledger_consistent()
        assert self.upstream.ledger_consistent()


def held_upstream(
    folder: Path, catalog: str, gate: Path, environment: dict[str, str] | None = None
) -> VideoqueueServer:
    """A server, not started, whose engine `gated` holds each job until `gate` exists."""
    engine = f"tests.engines.fixture_engines:HeldUpstream?gate={quote(str(gate))}"
    return VideoqueueServer(folder, catalog, {"gated": engine}, environment or {})


@contextmanager
def relay_through(
    folder: Path,
    catalog: str,
    factory: str,
    upstream: VideoqueueServer,
    gate: Path,
    requests: tuple[str, str],
    environment: dict[str, str] | None = None,
) -> Iterator[Relay]:
    """Ours, started, whose engine `upstream` is built by `factory` (reading the upstream's key
    from `UPSTREAM_VIDEOQUEUE_KEY`), its settings changed by `environment`; killed when the
    block ends. `requests`: the upstream's request lines that start and release a job."""
    ours = VideoqueueServer(
        folder,
        catalog,
        {"upstream": factory},
        {"UPSTREAM_VIDEOQUEUE_KEY": upstream.key, **(environment or {})},
    )
    try:
        ours.start()
        yield Relay(ours, upstream, gate, *requests)
    finally:
        ours.kill()


def assert_a_job_killed_on_each_attempt_is_refunded_and_released(
    relay: Relay, attempts: int
) -> None:
    """A job whose worker is SIGKILLed while it polls on each of its `attempts` (its last):
    ours fails as a lost worker's, refunded, and its upstream job is released there."""
    job_id = relay.queue("a lighthouse at dusk")
    relay.kill_each_attempt(job_id, attempts)

    job = relay.finished(job_id)

    assert job.state == JobState.FAILED
    assert job.failure == WORKER_LOST
    assert relay.ours.balance_micros() == BALANCE_MICROS
    relay.assert_released_upstream(job)


def assert_mp4_of_the_request(data: bytes) -> None:
    with av.open(io.BytesIO(data), "r") as container:
        frames = list(container.decode(video=0))
    assert (frames[0].width, frames[0].height) == (256, 256)
    assert len(frames) == 24
