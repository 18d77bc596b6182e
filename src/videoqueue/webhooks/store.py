"""Every query on webhook secrets, deliveries and attempts. Functions take a session and never
commit: the caller does."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.orm import Session

from videoqueue.db.base import could_be_key
from videoqueue.db.dialect import locked
from videoqueue.webhooks.models import (
    DELIVERY_ID_LENGTH,
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSecret,
)


@dataclass(frozen=True)
class DueDelivery:
    """A delivery a sender holds the lease of, with what it needs to sign and send it."""

    id: str
    url: str
    body: str
    secret: str | None
    attempts: int
    """Attempts started, this one included."""


JOB_ID_LENGTH = 36


def new_delivery_id() -> str:
    """A `webhook-id`: `msg_` and 32 hex digits, the same on every attempt of the delivery."""
    return f"msg_{uuid.uuid4().hex}"


def set_secret(session: Session, *, account_id: str, secret: str, now: datetime) -> None:
    """Make `secret` the account's signing secret, replacing any earlier one."""
    row = session.scalar(
        locked(select(WebhookSecret).where(WebhookSecret.account_id == account_id))
    )
    if row is None:
        session.add(WebhookSecret(account_id=account_id, secret=secret, created_at=now))
    else:
        row.secret, row.created_at = secret, now
    session.flush()


def has_secret(session: Session, account_id: str) -> bool:
    return bool(session.scalar(select(exists().where(WebhookSecret.account_id == account_id))))


def enqueue(
    session: Session,
    *,
    account_id: str,
    job_id: str,
    event: str,
    url: str,
    body: str,
    now: datetime,
) -> str:
    """Add a pending delivery, due now, in the caller's transaction; its id."""
    delivery_id = new_delivery_id()
    session.add(
        WebhookDelivery(
            id=delivery_id,
            account_id=account_id,
            job_id=job_id,
            event=event,
            url=url,
            body=body,
            state=DeliveryState.PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )
    return delivery_id


def _due(now: datetime) -> ColumnElement[bool]:
    """Pending, its time come, and held by no live lease (a dead sender's lapses)."""
    return and_(
        WebhookDelivery.state == DeliveryState.PENDING,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.lease_expires_at.is_(None), WebhookDelivery.lease_expires_at < now),
    )


def any_due(session: Session, *, now: datetime) -> bool:
    """Whether some delivery is due (a read, so an idle sender takes no write lock)."""
    return bool(session.scalar(select(exists().where(_due(now)))))


def claim_due(
    session: Session, *, worker_id: str, now: datetime, lease_seconds: float
) -> DueDelivery | None:
    """Lease the delivery due longest, counting the attempt it is claimed for."""
    delivery = session.scalar(
        locked(
            select(WebhookDelivery).where(_due(now)).order_by(WebhookDelivery.next_attempt_at),
            skip_locked=True,
        ).limit(1)
    )
    if delivery is None:
        return None
    delivery.attempts += 1
    delivery.lease_owner = worker_id
    delivery.lease_expires_at = now + timedelta(seconds=lease_seconds)
    secret = session.scalar(
        select(WebhookSecret.secret).where(WebhookSecret.account_id == delivery.account_id)
    )
    return DueDelivery(delivery.id, delivery.url, delivery.body, secret, delivery.attempts)


def record_attempt(
    session: Session,
    *,
    delivery_id: str,
    attempted_at: datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
) -> None:
    """Keep what one POST of the delivery was answered (or why it got no answer)."""
    session.add(
        WebhookAttempt(
            delivery_id=delivery_id,
            attempted_at=attempted_at,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )
    )


def settle(
    session: Session,
    *,
    delivery_id: str,
    worker_id: str,
    state: DeliveryState,
    next_attempt_at: datetime | None,
    now: datetime,
) -> bool:
    """End the worker's lease on the delivery: delivered, given up, or due again at
    `next_attempt_at`. False if the lease is no longer ours."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.lease_owner == worker_id)
        .values(
            state=state,
            next_attempt_at=next_attempt_at,
            lease_owner=None,
            lease_expires_at=None,
            finished_at=None if state == DeliveryState.PENDING else now,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def get_delivery(session: Session, delivery_id: str, *, account_id: str) -> WebhookDelivery | None:
    """The delivery if it exists and belongs to the account."""
    if not could_be_key(delivery_id, DELIVERY_ID_LENGTH):
        return None
    return session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.account_id == account_id
        )
    )


def list_deliveries(
    session: Session,
    *,
    account_id: str,
    after: WebhookDelivery | None,
    limit: int,
    job_id: str | None = None,
) -> list[WebhookDelivery]:
    """Up to `limit` of the account's deliveries, newest first (then by id), past `after`;
    only the job's when `job_id` is given."""
    stmt = select(WebhookDelivery).where(WebhookDelivery.account_id == account_id)
    if job_id is not None and not could_be_key(job_id, JOB_ID_LENGTH):
        return []
    if job_id is not None:
        stmt = stmt.where(WebhookDelivery.job_id == job_id)
    if after is not None:
        stmt = stmt.where(
            or_(
                WebhookDelivery.created_at < after.created_at,
                and_(
                    WebhookDelivery.created_at == after.created_at,
                    WebhookDelivery.id < after.id,
                ),
            )
        )
    stmt = stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    return list(session.scalars(stmt.limit(limit)))


def attempts_of(session: Session, delivery_ids: list[str]) -> dict[str, list[WebhookAttempt]]:
    """Each delivery's attempts, oldest first."""
    found: dict[str, list[WebhookAttempt]] = defaultdict(list)
    if not delivery_ids:
        return found
    rows = session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
    )
    for attempt in rows:
        found[attempt.delivery_id].append(attempt)
    return found
