"""Every movement of money: each one a ledger row written with the balance it changes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from videoqueue.billing.models import Account, AccountKind, LedgerEntry, LedgerKind
from videoqueue.clock import Clock
from videoqueue.db.dialect import locked
from videoqueue.errors import VideoqueueError


class InsufficientBalance(VideoqueueError):
    """Insufficient USD or Diem balance to complete request. Visit https://venice.ai/settings/api to add credits."""  # noqa: E501

    status = 402
    code = "INSUFFICIENT_BALANCE"

    def body(self) -> dict[str, object]:
        return {"error": self.message}


def create_account(session: Session, *, kind: AccountKind, clock: Clock, name: str = "",
                   unlimited: bool = False) -> Account:
    account = Account(kind=kind, name=name, unlimited=unlimited, balance_micros=0,
                      created_at=clock.now())
    session.add(account)
    session.flush()
    return account


def lock_account(session: Session, account_id: str) -> Account:
    """The account row, locked for the rest of the transaction."""
    account = session.scalar(locked(select(Account).where(Account.id == account_id)))
    if account is None:
        raise LookupError(f"no account {account_id}")
    return account


def _write(session: Session, account: Account, kind: LedgerKind, amount: int, clock: Clock, *,
           job_id: str | None = None, model: str | None = None, reference: str | None = None,
           note: str = "") -> LedgerEntry:
    account.balance_micros += amount
    entry = LedgerEntry(
        account_id=account.id, kind=kind, amount_micros=amount,
        balance_after_micros=account.balance_micros, job_id=job_id, model=model,
        reference=reference, note=note, created_at=clock.now(),
    )
    session.add(entry)
    session.flush()
    return entry


def charge(session: Session, *, account_id: str, job_id: str, model: str, micros: int,
           clock: Clock) -> LedgerEntry:
    """Charge a job's price. Raises `InsufficientBalance` unless the account can pay."""
    account = lock_account(session, account_id)
    if not account.unlimited and account.balance_micros < micros:
        raise InsufficientBalance()
    return _write(session, account, LedgerKind.CHARGE, -micros, clock, job_id=job_id,
                  model=model)


def refund(session: Session, *, job_id: str, clock: Clock, note: str = "") -> LedgerEntry | None:
    """Give a job's charge back, once: a second call for the same job does nothing."""
    charged = session.scalar(
        select(LedgerEntry).where(LedgerEntry.job_id == job_id,
                                  LedgerEntry.kind == LedgerKind.CHARGE)
    )
    if charged is None:
        return None
    account = lock_account(session, charged.account_id)
    already = session.scalar(
        select(LedgerEntry.id).where(LedgerEntry.job_id == job_id,
                                     LedgerEntry.kind == LedgerKind.REFUND)
    )
    if already is not None:
        return None
    return _write(session, account, LedgerKind.REFUND, -charged.amount_micros, clock,
                  job_id=job_id, model=charged.model, note=note)


def top_up(session: Session, *, account_id: str, micros: int, clock: Clock,
           reference: str | None = None, note: str = "") -> LedgerEntry:
    """Credit an account (an operator's grant or a settled payment)."""
    account = lock_account(session, account_id)
    return _write(session, account, LedgerKind.TOP_UP, micros, clock, reference=reference,
                  note=note)


def operator_account(session: Session) -> Account | None:
    return session.scalar(
        select(Account).where(Account.kind == AccountKind.OPERATOR).order_by(Account.created_at)
    )
