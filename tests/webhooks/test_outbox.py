"""The outbox on SQLite and PostgreSQL: a job's end writes its delivery in the same
transaction, and a delivery is held by one sender at a time until its lease lapses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import make_tiny_job
from videoqueue.clock import ManualClock
from videoqueue.db.session import Database
from videoqueue.jobs import store as jobs
from videoqueue.webhooks import store as outbox
from videoqueue.webhooks.models import DeliveryState, WebhookDelivery

SECRET = "whsec_c2VjcmV0"


def _ended_job(db: Database, clock: ManualClock, webhook_url: str | None) -> str:
    """A job with `webhook_url`, of an account with a secret, cancelled."""
    with db.transaction() as session:
        job = make_tiny_job(session, clock=clock, webhook_url=webhook_url)
        outbox.set_secret(session, account_id=job.account_id, secret=SECRET, now=clock.now())
        jobs.cancel_job(session, job, clock=clock, refunded=False)
        return job.id


def _deliveries(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)


def test_a_job_end_writes_its_delivery_only_when_the_job_has_a_webhook(
    database_url: str,
) -> None:
    db, clock = Database(database_url), ManualClock()
    try:
        _ended_job(db, clock, None)
        assert _deliveries(db) == 0
        _ended_job(db, clock, "https://example.com/hook")
        assert _deliveries(db) == 1
        with pytest.raises(RuntimeError), db.transaction() as session:
            job = make_tiny_job(session, clock=clock, webhook_url="https://example.com/hook")
            jobs.cancel_job(session, job, clock=clock, refunded=False)
            raise RuntimeError("the transaction that ends the job rolls back")
        assert _deliveries(db) == 1  # nor did its delivery stay
    finally:
        db.dispose()


def _deliver(session: Session, delivery_id: str, worker_id: str, clock: ManualClock) -> bool:
    return outbox.settle(
        session,
        delivery_id=delivery_id,
        worker_id=worker_id,
        state=DeliveryState.DELIVERED,
        next_attempt_at=None,
        now=clock.now(),
    )


def test_a_leased_delivery_goes_to_one_sender_until_its_lease_lapses(database_url: str) -> None:
    db, clock = Database(database_url), ManualClock()
    try:
        _ended_job(db, clock, "https://example.com/hook")
        with db.transaction() as session:
            first = outbox.claim_due(session, worker_id="a", now=clock.now(), lease_seconds=10)
        assert first is not None and first.attempts == 1 and first.secret == SECRET
        with db.transaction() as session:
            assert (
                outbox.claim_due(session, worker_id="b", now=clock.now(), lease_seconds=10) is None
            )
        clock.advance(11)  # "a" died mid-send: its lease lapses
        with db.transaction() as session:
            again = outbox.claim_due(session, worker_id="b", now=clock.now(), lease_seconds=10)
        assert again is not None and again.id == first.id and again.attempts == 2
        with db.transaction() as session:
            assert not _deliver(session, first.id, "a", clock)  # its lease is gone
            assert _deliver(session, first.id, "b", clock)
        clock.advance(timedelta(days=2).total_seconds())
        with db.read() as session:
            assert not outbox.any_due(session, now=clock.now())
    finally:
        db.dispose()
