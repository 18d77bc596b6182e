"""Scale-out loses nothing: two API processes and three workers on PostgreSQL and one shared
storage, workers SIGKILLed at random moments and an API process killed mid-run, and still
every job completes exactly once, is charged once and never refunded, and its MP4 is whole."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.cluster import Cluster, Member, SharedStorage, bucket_storage, build_cluster
from tests.conftest import wait_until
from tests.engines.diffusers_jobs import bound_model, decode, decode_audio
from tests.postgres import make_postgres_database
from tests.s3_server import S3Server
from videoqueue.auth.keys import create_key
from videoqueue.auth.models import KeyKind
from videoqueue.billing.ledger import create_account, top_up
from videoqueue.billing.models import Account, AccountKind, LedgerEntry, LedgerKind
from videoqueue.clock import SystemClock
from videoqueue.db.session import Database
from videoqueue.jobs import store
from videoqueue.jobs.models import Job
from videoqueue.jobs.states import JobState

pytestmark = pytest.mark.postgres

SEED = 18
JOBS = 60
CLIENTS = 4
"""Queue requests in flight at once, so the killed API process is likely holding some."""
WORKER_KILLS = 4
ACCOUNTS = 3
BALANCE_USD = 100
PRICE_MICROS = 10_000  # 1 s at 256p, $0.01 a second (`bound_model`)
MODELS = {"cluster-6fps": (6, False), "cluster-8fps-sound": (8, True), "cluster-12fps": (12, False)}
"""Model id → (fps, sound): frame counts and an audio track differ, the engine is the same."""
SETTINGS = {
    # Short leases, so a killed worker's job is claimed again within a few seconds.
    "VIDEOQUEUE_LEASE_SECONDS": "3",
    "VIDEOQUEUE_HEARTBEAT_SECONDS": "0.3",
    "VIDEOQUEUE_POLL_SECONDS": "0.1",
    # Kills must never use up a job's attempts: then it would fail, refunded, not complete.
    "VIDEOQUEUE_MAX_ATTEMPTS": "20",
    "VIDEOQUEUE_QUEUE_REQUESTS_PER_MINUTE": "10000",
    "VIDEOQUEUE_RETRIEVE_REQUESTS_PER_MINUTE": "10000",
    "VIDEOQUEUE_LINK_SECRET": "cluster-test-link-secret-shared-by-every-api",
}
CLAIMED = re.compile(r"job (\S+) \(\S+\) claimed, attempt (\d+)")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database: the cluster's processes migrate it as they start."""
    url, drop = make_postgres_database()
    yield url
    drop()


@pytest.fixture
def shared_storage(s3_server: S3Server) -> SharedStorage:
    """What the cluster stores media in: an S3 bucket, as a cluster of several hosts would."""
    return bucket_storage(s3_server)


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, shared_storage: SharedStorage) -> Iterator[Cluster]:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        "".join(bound_model(m, "preview", fps, sound=sound) for m, (fps, sound) in MODELS.items())
    )
    settings = {
        **SETTINGS,
        "VIDEOQUEUE_DATABASE_URL": postgres_url,
        **shared_storage.environment,
        "VIDEOQUEUE_CATALOG_PATH": str(catalog),
    }
    cluster = build_cluster(tmp_path, settings, apis=2, workers=3, engine="preview")
    try:
        yield cluster
    finally:
        cluster.end()
        # Shown by pytest only when the test failed: what every process logged.
        print(cluster.logs())


def make_keys(db: Database) -> list[str]:
    """Inference keys of new accounts, each credited `BALANCE_USD`."""
    clock = SystemClock()
    secrets = []
    with db.transaction() as session:
        for _ in range(ACCOUNTS):
            account = create_account(session, kind=AccountKind.STANDARD, clock=clock)
            top_up(session, account_id=account.id, micros=BALANCE_USD * 1_000_000, clock=clock)
            _, secret = create_key(
                session, account_id=account.id, clock=clock, kind=KeyKind.INFERENCE
            )
            secrets.append(secret)
    return secrets


def answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/models", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def request_body(i: int) -> dict[str, Any]:
    model = list(MODELS)[i % len(MODELS)]
    return {
        "model": model,
        "prompt": f"cluster job {i}",
        "duration": "1s",
        "resolution": "256p",
        "aspect_ratio": "1:1",
        "audio": MODELS[model][1],
    }


@dataclass
class Client:
    """Queues through the API processes in turn; on a connection error it sends the same
    request (same `Idempotency-Key`) to the next one, as a client behind a balancer would."""

    http: httpx.Client
    base_urls: list[str]
    keys: list[str]

    def queue(self, i: int) -> str:
        turn = [i]

        def sent() -> str | None:
            base_url = self.base_urls[turn[0] % len(self.base_urls)]
            try:
                response = self.http.post(
                    f"{base_url}/video/queue",
                    json=request_body(i),
                    headers={
                        "Authorization": f"Bearer {self.keys[i % len(self.keys)]}",
                        "Idempotency-Key": f"cluster-{i}",
                    },
                )
            except httpx.TransportError:
                turn[0] += 1
                return None
            assert response.status_code == 200, response.text
            return str(response.json()["queue_id"])

        return str(wait_until(sent, timeout=90, interval=0.1))

    def video(self, i: int, queue_id: str) -> tuple[int, int, int, bool]:
        """Retrieve the job's MP4 (from the API process it was first sent to) and decode it:
        (frames, height, width, whether it has sound)."""
        response = self.http.post(
            f"{self.base_urls[i % len(self.base_urls)]}/video/retrieve",
            json={"model": request_body(i)["model"], "queue_id": queue_id},
            headers={"Authorization": f"Bearer {self.keys[i % len(self.keys)]}"},
        )
        assert response.headers["content-type"] == "video/mp4", response.text
        frames, _ = decode(response.content)
        n, height, width = frames.shape[:3]
        return n, height, width, decode_audio(response.content) is not None


def lease_holders(db: Database) -> set[int]:
    """The pids of the workers running a job now (a worker id is `host:pid:random`)."""
    with db.transaction() as session:
        owners = session.scalars(select(Job.lease_owner).where(Job.state == JobState.RUNNING))
        return {int(owner.split(":")[1]) for owner in owners if owner}


def job_states(db: Database) -> Counter[JobState]:
    with db.transaction() as session:
        counts: Counter[JobState] = Counter()
        for state, _, count in store.jobs_by_state_and_model(session):
            counts[state] += count
        return counts


class Chaos(threading.Thread):
    """Kills, at seeded random moments: one API process once `api_kill_at` jobs are queued,
    and `WORKER_KILLS` times a worker that holds a job's lease; each is started again at once."""

    def __init__(self, cluster: Cluster, db: Database, rng: random.Random) -> None:
        super().__init__(daemon=True, name="chaos")
        self.cluster, self.db, self.rng = cluster, db, rng
        self.api_kill_at = rng.randint(JOBS // 4, JOBS // 2)
        self.api_killed: Member | None = None
        self.worker_kills = 0
        self.stopped = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc

    def _run(self) -> None:
        next_kill = time.monotonic() + self.rng.uniform(1.0, 3.0)
        while not self.stopped.wait(0.05):
            if self.api_killed is None and sum(job_states(self.db).values()) >= self.api_kill_at:
                self.api_killed = self.rng.choice(self.cluster.apis)
                self.api_killed.kill()
                self.api_killed.start()
            if self.worker_kills == WORKER_KILLS or time.monotonic() < next_kill:
                continue
            holders = lease_holders(self.db)
            busy = [w for w in self.cluster.workers if w.alive() and w.pid in holders]
            if busy:
                victim = self.rng.choice(busy)
                victim.kill()
                victim.start()
                self.worker_kills += 1
                next_kill = time.monotonic() + self.rng.uniform(1.0, 3.0)


def claims(workers: list[Member]) -> Counter[tuple[str, int]]:
    """How often each (job, attempt) was claimed, from every worker's log."""
    found: Counter[tuple[str, int]] = Counter()
    for worker in workers:
        for match in CLAIMED.finditer(worker.log.read_text(errors="replace")):
            found[(match[1], int(match[2]))] += 1
    return found


def test_a_cluster_with_killed_workers_and_api_completes_every_job_once(
    cluster: Cluster, postgres_url: str, shared_storage: SharedStorage
) -> None:
    db = Database(postgres_url)
    # Every process at once on the empty database, as a cluster's first start.
    cluster.start()
    wait_until(lambda: cluster.running() and all(map(answers, cluster.base_urls)), timeout=90)
    keys = make_keys(db)
    chaos = Chaos(cluster, db, random.Random(SEED))
    chaos.start()
    http = httpx.Client(timeout=20)
    client = Client(http, cluster.base_urls, keys)
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            queue_ids = list(pool.map(client.queue, range(JOBS)))

        def all_completed() -> bool:
            states = job_states(db)
            assert not states.keys() - {JobState.QUEUED, JobState.RUNNING, JobState.COMPLETED}
            return states[JobState.COMPLETED] == JOBS

        wait_until(all_completed, timeout=90, interval=0.2)
        chaos.stopped.set()
        chaos.join()
        assert chaos.error is None, repr(chaos.error)
        assert chaos.api_killed is not None and chaos.worker_kills > 0
        assert cluster.running()

        # The books are final once every job is: check them while the videos are fetched.
        verify = subprocess.Popen(
            [sys.executable, "-m", "videoqueue.cli", "ledger", "verify"],
            env=cluster.workers[0].environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        with ThreadPoolExecutor(CLIENTS) as pool:
            videos = list(pool.map(client.video, range(JOBS), queue_ids))
        verified = verify.communicate(timeout=60)[0].decode(errors="replace")
        assert verify.returncode == 0, verified
    finally:
        http.close()
        chaos.stopped.set()
        cluster.end()

    with db.transaction() as session:
        jobs = {job.id: job for job in session.scalars(select(Job))}
        ledger = list(session.scalars(select(LedgerEntry).where(LedgerEntry.job_id.is_not(None))))
        accounts = list(session.scalars(select(Account)))
    balances = {a.id: a.balance_micros for a in accounts}
    db.dispose()

    assert [a.kind for a in accounts].count(AccountKind.OPERATOR) == 1, "one, from either API"
    # One job per request, retried or not: no retry queued (or charged) a second time.
    assert len(set(queue_ids)) == JOBS and set(jobs) == set(queue_ids)
    asked = [MODELS[request_body(i)["model"]] for i in range(JOBS)]
    assert videos == [(fps, 256, 256, sound) for fps, sound in asked], "as each request asked"
    assert all(job.state == JobState.COMPLETED and job.lease_owner is None for job in jobs.values())
    charges = [e for e in ledger if e.kind == LedgerKind.CHARGE]
    assert [e for e in ledger if e.kind != LedgerKind.CHARGE] == [], "a completed job refunded"
    charged_jobs = [str(e.job_id) for e in charges]
    assert sorted(charged_jobs) == sorted(jobs), "one charge per job"
    assert {e.amount_micros for e in charges} == {-PRICE_MICROS}
    by_account = Counter(jobs[job_id].account_id for job_id in charged_jobs)
    assert len(by_account) == ACCOUNTS
    for account_id, charged in by_account.items():
        assert balances[account_id] == BALANCE_USD * 1_000_000 - charged * PRICE_MICROS

    # Each attempt was claimed once, by one worker (one killed between the claim and its log
    # line logged nothing), the last by the worker that completed it; only kills cost attempts.
    claimed = claims(cluster.workers)
    assert max(claimed.values()) == 1, [c for c, n in claimed.items() if n > 1]
    attempts = {(job_id, n) for job_id, job in jobs.items() for n in range(1, job.attempts + 1)}
    assert set(claimed) <= attempts
    assert all((job_id, job.attempts) in claimed for job_id, job in jobs.items())
    retried = sum(job.attempts - 1 for job in jobs.values())
    assert 1 <= retried <= chaos.worker_kills, "kills hit running jobs, and only they retried"

    assert all(f"jobs/{job_id}/output.mp4" in shared_storage.list_keys() for job_id in jobs)
    check = subprocess.run(
        # No request is being accepted now: even a moment-old object must have its job.
        [sys.executable, "-m", "videoqueue.cli", "storage", "check", "--grace-minutes", "0"],
        env=cluster.workers[0].environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, "storage holds an object no job owns:\n" + check.stdout
