"""What an account reads and sets of its webhooks: its signing secret (made, shown once) and
its deliveries with their attempts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from videoqueue.clock import Clock
from videoqueue.db.session import Database
from videoqueue.errors import VideoqueueError
from videoqueue.webhooks import store
from videoqueue.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery
from videoqueue.webhooks.signing import new_secret


class UnknownDeliveryCursor(VideoqueueError):
    """The `after` cursor names no webhook delivery of this account"""

    status = 400


def rotate_secret(db: Database, account_id: str, clock: Clock) -> str:
    """A new signing secret for the account, replacing its old one at once; the only time
    it is shown."""
    secret = new_secret()
    with db.transaction() as session:
        store.set_secret(session, account_id=account_id, secret=secret, now=clock.now())
    return secret


@dataclass(frozen=True)
class AttemptView:
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> AttemptView:
        return cls(attempt.attempted_at, attempt.status_code, attempt.error, attempt.duration_ms)


@dataclass(frozen=True)
class DeliveryView:
    """One delivery: its event, where it goes, how it stands, and each attempt so far."""

    id: str
    job_id: str
    event: str
    url: str
    state: DeliveryState
    payload: dict[str, Any]
    created_at: datetime
    next_attempt_at: datetime | None
    finished_at: datetime | None
    attempts: list[AttemptView]


@dataclass(frozen=True)
class DeliveryPage:
    views: list[DeliveryView]
    has_more: bool


def _view(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryView:
    pending = delivery.state == DeliveryState.PENDING
    return DeliveryView(
        id=delivery.id,
        job_id=delivery.job_id,
        event=delivery.event,
        url=delivery.url,
        state=delivery.state,
        payload=json.loads(delivery.body),
        created_at=delivery.created_at,
        next_attempt_at=delivery.next_attempt_at if pending else None,
        finished_at=delivery.finished_at,
        attempts=[AttemptView.of(a) for a in attempts],
    )


def list_delivery_views(
    db: Database, account_id: str, *, after: str | None, limit: int, job_id: str | None
) -> DeliveryPage:
    """Up to `limit` of the account's deliveries (of `job_id`'s job, when given), newest
    first, past the one `after` names (`UnknownDeliveryCursor` if none), and whether more
    follow."""
    with db.read() as session:
        cursor = None
        if after is not None:
            cursor = store.get_delivery(session, after, account_id=account_id)
            if cursor is None:
                raise UnknownDeliveryCursor()
        deliveries = store.list_deliveries(
            session, account_id=account_id, after=cursor, limit=limit + 1, job_id=job_id
        )
        shown = deliveries[:limit]
        attempts = store.attempts_of(session, [d.id for d in shown])
        views = [_view(d, attempts.get(d.id, [])) for d in shown]
    return DeliveryPage(views, has_more=len(deliveries) > limit)
