"""The operator's account and admin key are made once, however many API processes start
together on a new database."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from videoqueue.auth import bootstrap
from videoqueue.billing.ledger import operator_account
from videoqueue.billing.models import Account, AccountKind
from videoqueue.clock import SystemClock
from videoqueue.db.session import Database

STARTING = 3


def test_api_processes_starting_together_make_one_operator_account(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    all_looked = threading.Barrier(STARTING)

    def look_then_wait_for_the_others(session: Session) -> Account | None:
        # Each start waits (up to a second) until every one has looked for the operator, so
        # that all would find none and make one, unless they take turns.
        found = operator_account(session)
        with contextlib.suppress(threading.BrokenBarrierError):
            all_looked.wait(timeout=1.0)
        return found

    monkeypatch.setattr("videoqueue.auth.bootstrap.operator_account", look_then_wait_for_the_others)

    def start(_: int) -> str | None:
        db = Database(database_url)  # one each, as each process has its own
        try:
            with db.transaction() as session:
                return bootstrap.ensure_operator(session, SystemClock())
        finally:
            db.dispose()

    with ThreadPoolExecutor(STARTING) as pool:
        secrets = [s for s in pool.map(start, range(STARTING)) if s is not None]
    db = Database(database_url)
    with db.transaction() as session:
        operators = session.scalar(select(func.count()).where(Account.kind == AccountKind.OPERATOR))
    db.dispose()
    assert (len(secrets), operators) == (1, 1)
