"""Reading an account's usage back from the ledger (for `/billing/usage*` and key listings)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from videoqueue.billing.models import LedgerEntry, LedgerKind

USAGE_KINDS = (LedgerKind.CHARGE, LedgerKind.REFUND)
"""Usage is what was spent and given back; top-ups and adjustments are not usage."""


def _usage(account_id: str, start: datetime | None, end: datetime | None) -> Select[LedgerEntry]:
    stmt = select(LedgerEntry).where(
        LedgerEntry.account_id == account_id, LedgerEntry.kind.in_(USAGE_KINDS)
    )
    if start is not None:
        stmt = stmt.where(LedgerEntry.created_at >= start)
    if end is not None:
        stmt = stmt.where(LedgerEntry.created_at < end)
    return stmt


def usage_page(
    session: Session,
    account_id: str,
    *,
    start: datetime | None,
    end: datetime | None,
    newest_first: bool,
    limit: int,
    offset: int,
) -> tuple[list[LedgerEntry], int]:
    """One page of the account's usage rows in [start, end), and how many there are in all."""
    stmt = _usage(account_id, start, end)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    order = (
        (LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
        if newest_first
        else (LedgerEntry.created_at, LedgerEntry.id)
    )
    rows = session.scalars(stmt.order_by(*order).limit(limit).offset(offset)).all()
    return list(rows), int(total)


def usage_after(
    session: Session,
    account_id: str,
    *,
    start: datetime | None,
    end: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[LedgerEntry]:
    """Usage rows in [start, end) in ascending order, from just after `after` (a row's
    `(created_at, id)`): a walk whose pages stay put while new rows are written."""
    stmt = _usage(account_id, start, end)
    if after is not None:
        at, row_id = after
        stmt = stmt.where(
            or_(
                LedgerEntry.created_at > at,
                and_(LedgerEntry.created_at == at, LedgerEntry.id > row_id),
            )
        )
    return list(session.scalars(stmt.order_by(LedgerEntry.created_at, LedgerEntry.id).limit(limit)))
