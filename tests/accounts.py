"""Helpers for the money tests: a priced request, ledger rows, balances, keys with limits,
and a real uvicorn server on 127.0.0.1 for concurrent clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import func, select
from starlette.types import ASGIApp

from tests.conftest import Env, wait_until
from videoqueue.auth.keys import create_key
from videoqueue.auth.models import ApiKey, KeyKind
from videoqueue.billing.ledger import verify_ledger
from videoqueue.billing.models import Account, LedgerEntry, LedgerKind, LimitPeriod
from videoqueue.clock import Clock, SystemClock
from videoqueue.jobs.models import Job
from videoqueue.settings import Settings

T2V = "wan-2.5-preview-text-to-video"
BODY: dict[str, Any] = {
    "model": T2V,
    "prompt": "a kite over dunes",
    "duration": "5s",
    "resolution": "480p",
}


def money_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    """Settings for a fresh data dir (SQLite unless `database_url`), short leases."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "d",
        "database_url": database_url,
        "lease_seconds": 2.0,
        "heartbeat_seconds": 0.3,
        "poll_seconds": 0.05,
        "default_average_execution_ms": 5_000,
    }
    values.update(overrides)
    return Settings(**values)


def price_micros(env: Env, body: dict[str, Any] = BODY) -> int:
    """What `/video/queue` charges for `body`, from `/video/quote`."""
    response = env.post("/video/quote", body)
    assert response.status_code == 200, response.text
    quote: float = response.json()["quote"]
    return round(quote * 1_000_000)


def balance(env: Env, account_id: str) -> int:
    with env.db.transaction() as session:
        account = session.get(Account, account_id)
        assert account is not None
        return account.balance_micros


def rows(env: Env, account_id: str, kind: LedgerKind | None = None) -> list[LedgerEntry]:
    with env.db.transaction() as session:
        stmt = select(LedgerEntry).where(LedgerEntry.account_id == account_id)
        if kind is not None:
            stmt = stmt.where(LedgerEntry.kind == kind)
        return list(session.scalars(stmt.order_by(LedgerEntry.created_at)))


def job_count(env: Env, account_id: str) -> int:
    with env.db.transaction() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Job).where(Job.account_id == account_id)
            )
            or 0
        )


def assert_books_balance(env: Env) -> None:
    """Every balance equals the sum of its ledger, every refund returns one charge."""
    with env.db.transaction() as session:
        report = verify_ledger(session)
    assert report.consistent, report


def account_of(env: Env, secret: str) -> str:
    from videoqueue.auth.keys import hash_key

    with env.db.transaction() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
        assert key is not None
        return key.account_id


def make_key(
    env: Env,
    account_id: str,
    *,
    admin: bool = False,
    limit_usd: str | None = None,
    period: LimitPeriod = LimitPeriod.EPOCH,
    expires_at: datetime | None = None,
    clock: Clock | None = None,
) -> tuple[str, str]:
    """A key for the account with an optional spend limit and expiry: (id, secret)."""
    limit = None if limit_usd is None else round(float(limit_usd) * 1_000_000)
    with env.db.transaction() as session:
        key, secret = create_key(
            session,
            account_id=account_id,
            clock=clock or SystemClock(),
            kind=KeyKind.ADMIN if admin else KeyKind.INFERENCE,
            usd_limit_micros=limit,
            limit_period=period,
            expires_at=expires_at,
        )
        return key.id, secret


@contextmanager
def live_server(app: ASGIApp, port: int = 0) -> Iterator[str]:
    """The app served by a real uvicorn on 127.0.0.1 (a free port unless given); yields its
    base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws="none",
        lifespan="off",
        limit_concurrency=1000,
        backlog=1024,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="uvicorn")
    thread.start()
    wait_until(lambda: server.started, timeout=30, interval=0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
