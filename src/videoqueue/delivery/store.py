"""Every query on delivery links. Functions take a session and never commit: the caller does."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from videoqueue.db.dialect import locked
from videoqueue.delivery.models import DeliveryLink
from videoqueue.delivery.tokens import LinkClaims


def insert_link(
    session: Session, claims: LinkClaims, *, max_fetches: int, now: datetime
) -> DeliveryLink:
    """Record a newly issued link."""
    link = DeliveryLink(
        id=claims.link_id,
        job_id=claims.job_id,
        created_at=now,
        expires_at=claims.expires_at,
        max_fetches=max_fetches,
        fetch_count=0,
        window_count=0,
        delete_after_download=False,
    )
    session.add(link)
    session.flush()
    return link


def get_link_for_update(session: Session, link_id: str) -> DeliveryLink | None:
    """The link row, locked for the rest of the transaction."""
    return session.scalar(locked(select(DeliveryLink).where(DeliveryLink.id == link_id)))


def has_link(job_id: InstrumentedAttribute[str]) -> ColumnElement[bool]:
    """Whether the job whose id is `job_id` (a column) was queued with a `download_url` (its
    result is served only there)."""
    return exists().where(DeliveryLink.job_id == job_id)


def revoke_job_links(session: Session, job_id: str, *, now: datetime) -> int:
    """Revoke every live link to the job's output; returns how many were live."""
    result = session.execute(
        update(DeliveryLink)
        .where(DeliveryLink.job_id == job_id, DeliveryLink.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def delete_after_download(session: Session, job_id: str) -> None:
    """Delete the job's media once a link has served the whole file."""
    session.execute(
        update(DeliveryLink).where(DeliveryLink.job_id == job_id).values(delete_after_download=True)
    )
