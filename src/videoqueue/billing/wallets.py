"""Wallet accounts: found or made by address, their requests in flight, their ledger pages."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from videoqueue.billing.ledger import lock_account
from videoqueue.billing.models import Account, AccountKind, LedgerEntry
from videoqueue.billing.wallet_models import WalletRequest
from videoqueue.clock import Clock
from videoqueue.errors import VideoqueueError

EVM_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
SOLANA_ADDRESS = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")


class ConcurrencyLimit(VideoqueueError):
    """Too many concurrent requests"""

    status = 429
    code = "X402_CONCURRENCY_LIMIT"


def normalize_wallet(address: str) -> str | None:
    """The address as accounts store it (EVM lower-case, Solana as given); None if malformed."""
    if EVM_ADDRESS.match(address):
        return address.lower()
    if SOLANA_ADDRESS.match(address):
        return address
    return None


def find_wallet_account(session: Session, address: str) -> Account | None:
    """The account of a normalised wallet address, if it has one."""
    return session.scalar(select(Account).where(Account.wallet_address == address))


def wallet_account(session: Session, address: str, clock: Clock) -> Account:
    """The account of a normalised wallet address, made on first use."""
    account = find_wallet_account(session, address)
    if account is not None:
        return account
    account = Account(
        kind=AccountKind.WALLET,
        name=address,
        wallet_address=address,
        unlimited=False,
        balance_micros=0,
        created_at=clock.now(),
    )
    try:
        with session.begin_nested():
            session.add(account)
            session.flush()
    except IntegrityError:
        # Another process made it between our select and insert (PostgreSQL only).
        found = find_wallet_account(session, address)
        if found is None:
            raise
        return found
    return account


def acquire_request_slot(
    session: Session, *, account_id: str, limit: int, ttl_seconds: float, clock: Clock
) -> str:
    """Record a request in flight for the account. Raises `ConcurrencyLimit` at `limit`."""
    lock_account(session, account_id)  # serialises slot counting per wallet
    now = clock.now()
    session.execute(
        delete(WalletRequest).where(
            WalletRequest.account_id == account_id, WalletRequest.expires_at <= now
        )
    )
    in_flight = (
        session.scalar(
            select(func.count())
            .select_from(WalletRequest)
            .where(WalletRequest.account_id == account_id)
        )
        or 0
    )
    if in_flight >= limit:
        raise ConcurrencyLimit()
    slot = WalletRequest(
        account_id=account_id, started_at=now, expires_at=now + timedelta(seconds=ttl_seconds)
    )
    session.add(slot)
    session.flush()
    return slot.id


def release_request_slot(session: Session, slot_id: str) -> None:
    """The request has ended: free its slot (idempotent)."""
    session.execute(delete(WalletRequest).where(WalletRequest.id == slot_id))


def ledger_page(
    session: Session, *, account_id: str, limit: int, offset: int
) -> tuple[list[LedgerEntry], bool]:
    """The account's ledger entries, newest first, and whether more follow this page."""
    rows = list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.account_id == account_id)
            .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
            .limit(limit + 1)
            .offset(offset)
        )
    )
    return rows[:limit], len(rows) > limit
