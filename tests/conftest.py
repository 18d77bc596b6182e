"""Shared fixtures: a migrated database (SQLite, or PostgreSQL at 127.0.0.1:5432), the real
HTTP app over it, accounts and keys made in a line, and real worker processes."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.orm import Session

from tests.media_server import MediaServer, running
from tests.postgres import make_postgres_database, postgres_available
from tests.s3_server import S3Server, running_seaweedfs
from videoqueue.api.app import create_app
from videoqueue.api.failures import venice_failure
from videoqueue.auth.keys import create_key
from videoqueue.auth.models import KeyKind
from videoqueue.billing.ledger import create_account, top_up
from videoqueue.billing.models import AccountKind
from videoqueue.clock import Clock, ManualClock, SystemClock
from videoqueue.db.migrate import upgrade
from videoqueue.db.session import Database
from videoqueue.engines.base import Media
from videoqueue.jobs import store
from videoqueue.jobs.models import Job
from videoqueue.jobs.reaper import reap
from videoqueue.jobs.spec import JobSpec
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor


@pytest.fixture(scope="session")
def postgres_server() -> bool:
    return postgres_available()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database on each backend (tests using it run twice)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.sqlite'}"
        upgrade(url)
        yield url
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not running at 127.0.0.1:5432")
    url, drop = make_postgres_database()
    upgrade(url)
    yield url
    drop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One real S3 server (SeaweedFS) for the whole session, started when a test first needs
    it; each test takes its own prefix with `s3_server.url()`."""
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A handle on the migrated database of `database_url`."""
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves by hand (give it to `build_env` for the app to use)."""
    return ManualClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a fresh SQLite data dir, with short leases so lapses are quick."""
    return Settings(
        data_dir=tmp_path / "data",
        lease_seconds=2.0,
        heartbeat_seconds=0.3,
        poll_seconds=0.05,
        default_average_execution_ms=5_000,
    )


@dataclass
class Env:
    """A running app: its settings, database, an HTTP client, and the operator's admin key."""

    settings: Settings
    db: Database
    client: TestClient
    admin_key: str

    def make_account(self, balance_usd: float | str = 0) -> str:
        clock = SystemClock()
        with self.db.transaction() as session:
            account = create_account(session, kind=AccountKind.STANDARD, clock=clock)
            micros = int(Decimal(str(balance_usd)) * 1_000_000)
            if micros:
                top_up(
                    session, account_id=account.id, micros=micros, clock=clock, note="test grant"
                )
            return account.id

    def make_key(
        self, account_id: str | None = None, *, admin: bool = False, balance_usd: float | str = 1000
    ) -> str:
        """A key for `account_id`, or for a new account holding `balance_usd`."""
        if account_id is None:
            account_id = self.make_account(balance_usd)
        with self.db.transaction() as session:
            _, secret = create_key(
                session,
                account_id=account_id,
                clock=SystemClock(),
                kind=KeyKind.ADMIN if admin else KeyKind.INFERENCE,
            )
        return secret

    def post(
        self, path: str, body: Any, key: str | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        all_headers = {"Authorization": f"Bearer {key}"} if key else {}
        all_headers.update(headers or {})
        return self.client.post(f"/api/v1{path}", json=body, headers=all_headers)


def build_env(settings: Settings, clock: Clock | None = None) -> Iterator[Env]:
    from videoqueue.auth.bootstrap import ensure_operator

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    db = Database(settings.resolved_database_url)
    with db.transaction() as session:
        secret = ensure_operator(session, SystemClock())
    assert secret is not None
    with TestClient(create_app(settings, clock=clock), raise_server_exceptions=False) as client:
        yield Env(settings=settings, db=db, client=client, admin_key=secret)
    db.dispose()


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    yield from build_env(settings)


@pytest.fixture
def server() -> Iterator[MediaServer]:
    """A real HTTP server on 127.0.0.1 for media URLs, counting what reached it."""
    with running() as media_server:
        yield media_server


@pytest.fixture
def local_env(settings: Settings) -> Iterator[Env]:
    """The app with private ranges allowed, so it may fetch from the test's 127.0.0.1 server."""
    yield from build_env(settings.model_copy(update={"media_allow_private_networks": True}))


@pytest.fixture
def workers(env: Env) -> Iterator[Supervisor]:
    """One real worker process (supervised: it is replaced if it dies)."""
    supervisor = Supervisor(env.settings, 1)
    supervisor.start()
    yield supervisor
    supervisor.stop()


def load_job(db: Database, job_id: str) -> Job:
    """The job row as it stands now (detached from its session)."""
    with db.transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None, f"no job {job_id}"
        return job


RETRIEVE_POLL_S = 1.0
"""How often a test polls `/video/retrieve` while a job runs: 60 polls a minute stay within
the key's 120 retrieves a minute however long a slow machine takes (a 429 is no answer)."""


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.1) -> Any:
    """Poll `predicate` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


def png_data_url(
    width: int = 640,
    height: int = 360,
    color: tuple[int, int, int] = (200, 60, 40),
    *,
    noise_seed: int | None = None,
) -> str:
    """A PNG image as a data URL (solid, or seeded noise)."""
    if noise_seed is None:
        image = Image.new("RGB", (width, height), color)
    else:
        rng = np.random.default_rng(noise_seed)
        image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def retrieve_error(job: Job) -> tuple[int, dict[str, Any]]:
    """The status and body `/video/retrieve` answers for a failed job."""
    assert job.failure is not None, f"job {job.id} has not failed"
    return venice_failure(job.failure)


def reap_now(db: Database, clock: Clock) -> int:
    """Run the reaper once, as a worker process does on its interval; how many it failed."""
    with db.transaction() as session:
        return reap(session, clock=clock)


def tiny_spec(prompt: str = "", **changes: Any) -> JobSpec:
    """A job spec for a 2x2 one-second clip without inputs (for jobs made without the API)."""
    values: dict[str, Any] = {
        "prompt": prompt,
        "negative_prompt": "",
        "width": 2,
        "height": 2,
        "fps": 24,
        "frame_count": 24,
        "duration_s": 1.0,
        "audio": False,
        "seed": 1,
        "upscale_factor": None,
        "max_output_pixels": None,
        "max_run_seconds": 1800.0,
        "media": Media(),
    }
    return JobSpec(**{**values, **changes})


def make_tiny_job(
    session: Session,
    *,
    clock: Clock,
    account_id: str | None = None,
    model: str = "wan-2.5-preview-text-to-video",
    webhook_url: str | None = None,
) -> Job:
    """A QUEUED, uncharged job of `tiny_spec` on `preview`, one attempt, made without the API in
    the caller's transaction (for a new account unless `account_id` is given)."""
    if account_id is None:
        account_id = create_account(session, kind=AccountKind.STANDARD, clock=clock).id
    return store.create_job(
        session,
        account_id=account_id,
        model=model,
        engine="preview",
        spec=tiny_spec(),
        price_micros=0,
        max_attempts=1,
        clock=clock,
        webhook_url=webhook_url,
    )
