"""Every movement of money: each one a ledger row written with the balance it changes.

An account's `balance_micros` is a cache of the sum of its rows. Every function here locks
the account row before it reads the balance (`FOR NO KEY UPDATE` on PostgreSQL; SQLite holds
its write lock), so two transactions never both read a balance and then both write it, and a
key's spend is summed after the same lock, so two charges on one key cannot both slip under
its limit. A charge that needs to read nothing first is locked by its own update.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from videoqueue.billing.models import Account, AccountKind, LedgerEntry, LedgerKind, LimitPeriod
from videoqueue.clock import Clock
from videoqueue.db.base import new_id, table
from videoqueue.db.dialect import locked, writes_in_one_statement
from videoqueue.errors import VideoqueueError

LOCKED_ACCOUNTS = "videoqueue_locked_accounts"

# Built once (each runs on every queue request): building a statement costs more CPU than
# running it from SQLAlchemy's compiled cache. Plain columns: an ORM `Account` cost more to
# load than the select did to run.
_ACCOUNTS = table(Account)
_BALANCE = select(_ACCOUNTS.c.id, _ACCOUNTS.c.balance_micros, _ACCOUNTS.c.unlimited).where(
    _ACCOUNTS.c.id == bindparam("account_id")
)
# Rows that reference the account (a job, a ledger entry) may be written by other
# transactions while one holds it: a queue request writes its job before it locks the account.
_LOCK_ACCOUNT = locked(_BALANCE, keys_shared=True)
_SET_BALANCE = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("account_id"))
    .values(balance_micros=bindparam("balance"))
)
# The charge of an account not locked yet: the update takes the row's lock, and changes
# nothing (and returns no row) where the balance is short.
_CHARGE_IF_AFFORDABLE = (
    update(_ACCOUNTS)
    .where(
        _ACCOUNTS.c.id == bindparam("account_id"),
        or_(_ACCOUNTS.c.unlimited, _ACCOUNTS.c.balance_micros >= bindparam("micros")),
    )
    .values(balance_micros=_ACCOUNTS.c.balance_micros - bindparam("micros"))
    .returning(_ACCOUNTS.c.balance_micros, _ACCOUNTS.c.unlimited)
)
_ENTRIES = table(LedgerEntry)
_INSERT_ENTRY = insert(_ENTRIES)
_CHARGED = _CHARGE_IF_AFFORDABLE.cte("charged")
# Its parameters are named apart from the accounts' columns: a parameter an UPDATE's table has
# a column for is taken as a value to set.
_CHARGE_ENTRY = {
    column: bindparam(f"entry_{column}", type_=_ENTRIES.c[column].type)
    for column in ("id", "kind", "job_id", "api_key_id", "model", "note", "created_at")
} | {
    "account_id": bindparam("account_id", type_=_ENTRIES.c.account_id.type),
    "amount_micros": -bindparam("micros", type_=_ENTRIES.c.amount_micros.type),
    "balance_after_micros": _CHARGED.c.balance_micros,
}
# The same charge with its ledger row in one statement, where the database takes writes in a
# WITH (PostgreSQL): the account's row is then held from that statement to the commit, one
# round trip less, and its other charges wait that much less. It writes nothing, and returns
# no row, where the balance is short.
_CHARGE_WITH_ENTRY = select(_CHARGED.c.balance_micros, _CHARGED.c.unlimited).add_cte(
    insert(_ENTRIES)
    .from_select(list(_CHARGE_ENTRY), select(*_CHARGE_ENTRY.values()).select_from(_CHARGED))
    .cte("entry")
)


class InsufficientBalance(VideoqueueError):
    """Insufficient USD or Diem balance to complete request. Visit https://venice.ai/settings/api to add credits."""  # noqa: E501

    status = 402
    code = "INSUFFICIENT_BALANCE"

    def body(self) -> dict[str, object]:
        return {"error": self.message}


class KeySpendLimitExceeded(InsufficientBalance):
    """API key USD spend limit exceeded. Raise the key's consumption limit or wait for its limit period to reset."""  # noqa: E501

    code = "API_KEY_USD_SPEND_LIMIT_EXCEEDED"


@dataclass(frozen=True)
class KeyBudget:
    """The API key a charge is made with, and what it may spend per period (None: no limit)."""

    key_id: str
    limit_micros: int | None = None
    period: LimitPeriod = LimitPeriod.EPOCH


def period_start(period: LimitPeriod, now: datetime) -> datetime | None:
    """When the limit period holding `now` began (None for LIFETIME: it never resets)."""
    now = now.astimezone(UTC)
    if period == LimitPeriod.EPOCH:
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == LimitPeriod.MONTH:
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return None


def create_account(
    session: Session, *, kind: AccountKind, clock: Clock, name: str = "", unlimited: bool = False
) -> Account:
    account = Account(
        kind=kind, name=name, unlimited=unlimited, balance_micros=0, created_at=clock.now()
    )
    session.add(account)
    session.flush()
    return account


@dataclass
class AccountBalance:
    """An account's balance as this transaction read it, and as its own writes left it."""

    id: str
    balance_micros: int
    unlimited: bool


def _read_balance(session: Session, stmt: Select[Any], account_id: str) -> AccountBalance | None:
    row = session.execute(stmt, {"account_id": account_id}).first()
    return None if row is None else AccountBalance(row.id, row.balance_micros, row.unlimited)


def account_balance(session: Session, account_id: str) -> AccountBalance | None:
    """The account's balance, read without locking its row (None: no such account)."""
    return _read_balance(session, _BALANCE, account_id)


def lock_account(session: Session, account_id: str) -> AccountBalance:
    """The account row, locked for the rest of the transaction (read once per transaction:
    a session serves one transaction, and a lock holds until it ends)."""
    held: dict[str, AccountBalance] = session.info.setdefault(LOCKED_ACCOUNTS, {})
    if account_id in held:
        return held[account_id]
    account = _read_balance(session, _LOCK_ACCOUNT, account_id)
    if account is None:
        raise LookupError(f"no account {account_id}")
    held[account_id] = account
    return account


def _write(
    session: Session,
    account: AccountBalance,
    kind: LedgerKind,
    amount: int,
    clock: Clock,
    *,
    job_id: str | None = None,
    api_key_id: str | None = None,
    model: str | None = None,
    reference: str | None = None,
    note: str = "",
) -> str:
    """Move `amount` on the locked `account` and write its row; the row's id."""
    _move(session, account, amount)
    return _entry(
        session,
        account,
        kind,
        amount,
        clock,
        job_id=job_id,
        api_key_id=api_key_id,
        model=model,
        reference=reference,
        note=note,
    )


def _move(session: Session, account: AccountBalance, amount: int) -> None:
    """Move `amount` on the locked `account`."""
    balance = account.balance_micros + amount
    session.execute(_SET_BALANCE, {"account_id": account.id, "balance": balance})
    _balance_now(session, account, balance)


def _balance_now(session: Session, account: AccountBalance, balance: int) -> None:
    """What this transaction reads of the account from now on: its balance after a move."""
    account.balance_micros = balance
    loaded = session.identity_map.get(identity_key(Account, account.id))
    if loaded is not None:  # an `Account` this session loaded reads as the row now holds
        set_committed_value(loaded, "balance_micros", balance)


def _entry(
    session: Session,
    account: AccountBalance,
    kind: LedgerKind,
    amount: int,
    clock: Clock,
    **refs: str | None,
) -> str:
    """The ledger row of a move that left `account` at its balance; its id. A plain insert,
    no ORM flush: this runs on every queue request."""
    entry_id = new_id()
    session.execute(
        _INSERT_ENTRY,
        {
            "id": entry_id,
            "account_id": account.id,
            "kind": kind,
            "amount_micros": amount,
            "balance_after_micros": account.balance_micros,
            "created_at": clock.now(),
            **refs,
        },
    )
    return entry_id


def key_spend_micros(session: Session, key_id: str, since: datetime | None) -> int:
    """What a key has spent: its CHARGEs made since `since`, less the REFUNDs of those charges.

    A refund counts against the period of the charge it returns, so a refund today of
    yesterday's job does not raise today's allowance.
    """
    refund_row = aliased(LedgerEntry)
    conditions = [LedgerEntry.api_key_id == key_id, LedgerEntry.kind == LedgerKind.CHARGE]
    if since is not None:
        conditions.append(LedgerEntry.created_at >= since)
    net = session.scalar(
        select(
            func.coalesce(
                func.sum(LedgerEntry.amount_micros + func.coalesce(refund_row.amount_micros, 0)), 0
            )
        )
        .select_from(LedgerEntry)
        .outerjoin(
            refund_row,
            and_(refund_row.job_id == LedgerEntry.job_id, refund_row.kind == LedgerKind.REFUND),
        )
        .where(*conditions)
    )
    return -int(net or 0)


def refuse_unaffordable(
    session: Session,
    account: AccountBalance,
    micros: int,
    clock: Clock,
    key: KeyBudget | None = None,
) -> None:
    """Raise `KeySpendLimitExceeded` or `InsufficientBalance` if `micros` cannot be charged.

    An `unlimited` account (the operator's) is never refused for its balance.
    """
    if key is not None and key.limit_micros is not None:
        spent = key_spend_micros(session, key.key_id, period_start(key.period, clock.now()))
        if spent + micros > key.limit_micros:
            raise KeySpendLimitExceeded()
    if not account.unlimited and account.balance_micros < micros:
        raise InsufficientBalance()


def charge(
    session: Session,
    *,
    account_id: str,
    job_id: str,
    model: str,
    micros: int,
    clock: Clock,
    key: KeyBudget | None = None,
) -> str:
    """Charge a job's price; the ledger row's id. Raises `KeySpendLimitExceeded` or
    `InsufficientBalance`.

    An `unlimited` account's charges are written all the same. An account this transaction
    has not locked yet, charged without a key's limit to sum, is locked by the charge's own
    update: two statements in all (one on PostgreSQL), where locking first takes three.
    """
    refs = {"job_id": job_id, "api_key_id": key.key_id if key else None, "model": model}
    if key is None or key.limit_micros is None:
        entry_id = _charge_if_affordable(session, account_id, micros, clock, refs)
        if entry_id is not None:
            return entry_id
    # Locked first: the key's spend is summed under the lock, or the refusal needs the
    # balance (the charge's update changed nothing).
    account = lock_account(session, account_id)
    refuse_unaffordable(session, account, micros, clock, key)
    _move(session, account, -micros)
    return _entry(session, account, LedgerKind.CHARGE, -micros, clock, **refs)


def _charge_if_affordable(
    session: Session, account_id: str, micros: int, clock: Clock, refs: dict[str, str | None]
) -> str | None:
    """Take `micros` from an account this transaction has not locked, if affordable, locking
    it, and write the charge's ledger row (with `refs`); the row's id. None (nothing changed)
    if not affordable, or if it is locked already."""
    held: dict[str, AccountBalance] = session.info.setdefault(LOCKED_ACCOUNTS, {})
    if account_id in held:
        return None
    params = {"account_id": account_id, "micros": micros}
    entry_id = None
    if writes_in_one_statement(session):
        entry_id = new_id()
        entry = {"id": entry_id, "kind": LedgerKind.CHARGE, "note": "", "created_at": clock.now()}
        params |= {f"entry_{name}": value for name, value in (entry | refs).items()}
    stmt = _CHARGE_IF_AFFORDABLE if entry_id is None else _CHARGE_WITH_ENTRY
    row = session.execute(stmt, params).first()
    if row is None:
        return None
    account = held[account_id] = AccountBalance(account_id, row.balance_micros, row.unlimited)
    _balance_now(session, account, row.balance_micros)
    if entry_id is not None:  # written with the charge
        return entry_id
    return _entry(session, account, LedgerKind.CHARGE, -micros, clock, **refs)


def refund(session: Session, *, job_id: str, clock: Clock, note: str = "") -> str | None:
    """Give a job's charge back, once (the ledger row's id): a second call for the same job
    does nothing (None)."""
    charged = session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.job_id == job_id, LedgerEntry.kind == LedgerKind.CHARGE
        )
    )
    if charged is None:
        return None
    account = lock_account(session, charged.account_id)
    # Looked for only once the account is locked: a concurrent refund has committed by now.
    already = session.scalar(
        select(LedgerEntry.id).where(
            LedgerEntry.job_id == job_id, LedgerEntry.kind == LedgerKind.REFUND
        )
    )
    if already is not None:
        return None
    return _write(
        session,
        account,
        LedgerKind.REFUND,
        -charged.amount_micros,
        clock,
        job_id=job_id,
        api_key_id=charged.api_key_id,
        model=charged.model,
        note=note,
    )


def top_up(
    session: Session,
    *,
    account_id: str,
    micros: int,
    clock: Clock,
    reference: str | None = None,
    note: str = "",
) -> str:
    """Credit an account (an operator's grant or a settled payment)."""
    if micros <= 0:
        raise ValueError("a top-up must be positive")
    account = lock_account(session, account_id)
    return _write(
        session, account, LedgerKind.TOP_UP, micros, clock, reference=reference, note=note
    )


def adjust(session: Session, *, account_id: str, micros: int, clock: Clock, note: str = "") -> str:
    """An operator's correction, up or down. Raises `InsufficientBalance` rather than take
    an account that is held to its balance below zero."""
    if micros == 0:
        raise ValueError("an adjustment must not be zero")
    account = lock_account(session, account_id)
    if micros < 0 and not account.unlimited and account.balance_micros + micros < 0:
        raise InsufficientBalance()
    return _write(session, account, LedgerKind.ADJUSTMENT, micros, clock, note=note)


def operator_account(session: Session) -> Account | None:
    return session.scalar(
        select(Account).where(Account.kind == AccountKind.OPERATOR).order_by(Account.created_at)
    )


@dataclass(frozen=True)
class BalanceMismatch:
    """An account whose cached balance is not the sum of its ledger rows."""

    account_id: str
    balance_micros: int
    ledger_micros: int


@dataclass(frozen=True)
class LedgerReport:
    accounts: int
    entries: int
    mismatches: tuple[BalanceMismatch, ...]
    bad_refunds: tuple[str, ...]
    """Ids of REFUND rows that do not return exactly one CHARGE of the same job."""

    @property
    def consistent(self) -> bool:
        return not self.mismatches and not self.bad_refunds


def verify_ledger(session: Session) -> LedgerReport:
    """Check every balance against its ledger, and every refund against its charge."""
    sums = (
        select(
            LedgerEntry.account_id,
            func.sum(LedgerEntry.amount_micros).label("total"),
            func.count().label("rows"),
        )
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Account.id,
            Account.balance_micros,
            func.coalesce(sums.c.total, 0),
            func.coalesce(sums.c.rows, 0),
        )
        .outerjoin(sums, sums.c.account_id == Account.id)
        .order_by(Account.created_at)
    ).all()
    mismatches = tuple(
        BalanceMismatch(account_id, int(balance), int(total))
        for account_id, balance, total, _ in rows
        if int(balance) != int(total)
    )
    charge_row = aliased(LedgerEntry)
    bad_refunds = session.scalars(
        select(LedgerEntry.id)
        .outerjoin(
            charge_row,
            and_(charge_row.job_id == LedgerEntry.job_id, charge_row.kind == LedgerKind.CHARGE),
        )
        .where(LedgerEntry.kind == LedgerKind.REFUND)
        .where(
            (charge_row.id.is_(None))
            | (charge_row.amount_micros != -LedgerEntry.amount_micros)
            | (charge_row.account_id != LedgerEntry.account_id)
        )
    ).all()
    return LedgerReport(
        accounts=len(rows),
        entries=sum(int(r[3]) for r in rows),
        mismatches=mismatches,
        bad_refunds=tuple(bad_refunds),
    )
