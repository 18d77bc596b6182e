"""The ledger on SQLite and PostgreSQL: every change a row, balances that add up, refunds
once, adjustments, per-key spend, and a verifier that notices a tampered balance."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.conftest import tiny_spec
from tests.statements import recorded_statements
from videoqueue.billing.ledger import (
    InsufficientBalance,
    KeyBudget,
    KeySpendLimitExceeded,
    adjust,
    charge,
    create_account,
    key_spend_micros,
    lock_account,
    period_start,
    refund,
    top_up,
    verify_ledger,
)
from videoqueue.billing.models import Account, AccountKind, LedgerEntry, LedgerKind, LimitPeriod
from videoqueue.clock import ManualClock
from videoqueue.db.base import new_id
from videoqueue.db.session import Database
from videoqueue.jobs import store
from videoqueue.jobs.models import Job

USD = 1_000_000


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 8, 22, 12, 0, tzinfo=UTC))


def _account(db: Database, clock: ManualClock, usd: int = 0, *, unlimited: bool = False) -> str:
    with db.transaction() as session:
        account = create_account(
            session, kind=AccountKind.STANDARD, clock=clock, unlimited=unlimited
        )
        if usd:
            top_up(session, account_id=account.id, micros=usd * USD, clock=clock)
        return account.id


def _balance(db: Database, account_id: str) -> int:
    with db.transaction() as session:
        account = session.get(Account, account_id)
        assert account is not None
        return account.balance_micros


def _charge(
    db: Database,
    clock: ManualClock,
    account_id: str,
    micros: int,
    job_id: str,
    key: KeyBudget | None = None,
) -> None:
    with db.transaction() as session:
        charge(
            session,
            account_id=account_id,
            job_id=job_id,
            model="m",
            micros=micros,
            clock=clock,
            key=key,
        )


def test_each_change_is_a_row_and_the_balance_is_their_sum(
    db: Database, clock: ManualClock
) -> None:
    account = _account(db, clock, 10)
    _charge(db, clock, account, 3 * USD, "job-1")
    with db.transaction() as session:
        refund(session, job_id="job-1", clock=clock, note="engine failed")
        adjust(session, account_id=account, micros=-USD // 2, clock=clock, note="correction")
    with db.transaction() as session:
        entries = list(
            session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.account_id == account)
                .order_by(LedgerEntry.created_at, LedgerEntry.kind)
            )
        )
        report = verify_ledger(session)
    assert sorted((e.kind, e.amount_micros) for e in entries) == sorted(
        [
            (LedgerKind.TOP_UP, 10 * USD),
            (LedgerKind.CHARGE, -3 * USD),
            (LedgerKind.REFUND, 3 * USD),
            (LedgerKind.ADJUSTMENT, -USD // 2),
        ]
    )
    assert _balance(db, account) == sum(e.amount_micros for e in entries) == 9_500_000
    assert report.consistent


def test_a_charge_beyond_the_balance_is_refused_and_writes_nothing(
    db: Database, clock: ManualClock
) -> None:
    account = _account(db, clock, 1)
    with pytest.raises(InsufficientBalance) as raised:
        _charge(db, clock, account, 2 * USD, "job-1")
    assert raised.value.status == 402
    assert raised.value.body() == {
        "error": "Insufficient USD or Diem balance to complete "
        "request. Visit https://venice.ai/settings/api to "
        "add credits."
    }
    assert _balance(db, account) == USD


def test_an_unlimited_account_is_charged_but_never_refused(
    db: Database, clock: ManualClock
) -> None:
    account = _account(db, clock, unlimited=True)
    _charge(db, clock, account, 5 * USD, "job-1")
    assert _balance(db, account) == -5 * USD
    with db.transaction() as session:
        assert verify_ledger(session).consistent


def test_a_second_refund_of_one_job_does_nothing(db: Database, clock: ManualClock) -> None:
    account = _account(db, clock, 5)
    _charge(db, clock, account, 2 * USD, "job-1")
    with db.transaction() as session:
        assert refund(session, job_id="job-1", clock=clock) is not None
    with db.transaction() as session:
        assert refund(session, job_id="job-1", clock=clock) is None
        assert refund(session, job_id="never-charged", clock=clock) is None
    assert _balance(db, account) == 5 * USD


def test_an_adjustment_cannot_take_a_held_account_below_zero(
    db: Database, clock: ManualClock
) -> None:
    account = _account(db, clock, 1)
    with pytest.raises(InsufficientBalance), db.transaction() as session:
        adjust(session, account_id=account, micros=-2 * USD, clock=clock)
    with db.transaction() as session:
        adjust(session, account_id=account, micros=4 * USD, clock=clock, note="goodwill")
    assert _balance(db, account) == 5 * USD


def test_key_spend_limit_counts_charges_less_refunds_in_the_period(
    db: Database, clock: ManualClock
) -> None:
    account = _account(db, clock, 100)
    key = KeyBudget(key_id="key-1", limit_micros=5 * USD, period=LimitPeriod.EPOCH)
    _charge(db, clock, account, 3 * USD, "job-1", key)
    _charge(db, clock, account, 2 * USD, "job-2", key)
    with pytest.raises(KeySpendLimitExceeded) as raised:
        _charge(db, clock, account, USD, "job-3", key)
    assert raised.value.status == 402
    message = raised.value.body()["error"]
    assert isinstance(message, str) and message.startswith("API key USD spend limit exceeded.")
    with db.transaction() as session:
        refund(session, job_id="job-2", clock=clock)
    _charge(db, clock, account, 2 * USD, "job-3", key)  # the refund gave the room back
    clock.advance(24 * 3600)  # a new UTC day
    _charge(db, clock, account, 5 * USD, "job-4", key)
    with db.transaction() as session:
        assert (
            key_spend_micros(session, "key-1", period_start(LimitPeriod.EPOCH, clock.now()))
            == 5 * USD
        )
        assert key_spend_micros(session, "key-1", None) == 10 * USD


def test_a_refund_today_of_yesterdays_job_does_not_raise_todays_allowance(
    db: Database, clock: ManualClock
) -> None:
    account = _account(db, clock, 100)
    key = KeyBudget(key_id="key-1", limit_micros=5 * USD, period=LimitPeriod.EPOCH)
    _charge(db, clock, account, 5 * USD, "yesterday", key)
    clock.advance(24 * 3600)
    _charge(db, clock, account, 5 * USD, "today", key)
    with db.transaction() as session:
        refund(session, job_id="yesterday", clock=clock)
    with pytest.raises(KeySpendLimitExceeded):
        _charge(db, clock, account, USD, "one-more", key)


def test_limit_periods_start_at_utc_midnight_and_the_first_of_the_month() -> None:
    now = datetime(2026, 8, 22, 15, 30, tzinfo=UTC)
    assert period_start(LimitPeriod.EPOCH, now) == datetime(2026, 8, 22, tzinfo=UTC)
    assert period_start(LimitPeriod.MONTH, now) == datetime(2026, 8, 1, tzinfo=UTC)
    assert period_start(LimitPeriod.LIFETIME, now) is None
    tokyo = now.astimezone(timezone(timedelta(hours=9)))  # already the 23rd there
    assert period_start(LimitPeriod.EPOCH, tokyo) == datetime(2026, 8, 22, tzinfo=UTC)


def test_verify_finds_a_tampered_balance_and_a_forged_refund(
    db: Database, clock: ManualClock
) -> None:
    honest = _account(db, clock, 3)
    tampered = _account(db, clock, 3)
    with db.transaction() as session:
        session.execute(
            update(Account)
            .where(Account.id == tampered)
            .values(balance_micros=Account.balance_micros + 1)
        )
        forged = LedgerEntry(
            account_id=honest,
            kind=LedgerKind.REFUND,
            amount_micros=0,
            balance_after_micros=3 * USD,
            job_id="nothing-charged",
            created_at=clock.now(),
        )
        session.add(forged)
    with db.transaction() as session:
        report = verify_ledger(session)
    assert not report.consistent
    assert [(m.account_id, m.balance_micros - m.ledger_micros) for m in report.mismatches] == [
        (tampered, 1)
    ]
    assert report.bad_refunds == (forged.id,)


def test_a_top_up_must_be_positive(db: Database, clock: ManualClock) -> None:
    account = _account(db, clock)
    with pytest.raises(ValueError), db.transaction() as session:
        top_up(session, account_id=account, micros=0, clock=clock)


def _row_locks_only(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite's writers take turns)")


@contextmanager
def _another_transaction(db: Database, lock_timeout: str) -> Iterator[Session]:
    """A transaction beside the test's own, which fails where it waits past `lock_timeout`
    for a row lock."""
    with db.transaction() as other:
        other.execute(text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
        yield other


def test_an_account_held_by_one_transaction_still_takes_jobs_written_by_another(
    db: Database, clock: ManualClock
) -> None:
    # A queue request writes its job before it locks the account: the job's foreign key
    # check must not wait for (or deadlock with) another request holding the account.
    _row_locks_only(db)
    account_id = _account(db, clock, 5)
    with db.transaction() as holder:
        lock_account(holder, account_id)
        with _another_transaction(db, lock_timeout="2s") as other:
            store.insert_job(
                other,
                job_id=new_id(),
                account_id=account_id,
                model="m",
                engine="preview",
                spec=tiny_spec(),
                price_micros=USD,
                max_attempts=3,
                clock=clock,
            )
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 1


def test_charges_in_one_transaction_each_write_the_balance_they_left(
    db: Database, clock: ManualClock
) -> None:
    account_id = _account(db, clock, 10)
    with db.transaction() as session:
        loaded = session.get(Account, account_id)  # read as the row holds after each charge
        for job_id in ("job-1", "job-2"):
            charge(
                session,
                account_id=account_id,
                job_id=job_id,
                model="m",
                micros=3 * USD,
                clock=clock,
            )
        assert loaded is not None and loaded.balance_micros == 4 * USD
    with db.read() as session:
        after = session.scalars(
            select(LedgerEntry.balance_after_micros)
            .where(LedgerEntry.kind == LedgerKind.CHARGE)
            .order_by(LedgerEntry.balance_after_micros.desc())
        ).all()
        assert verify_ledger(session).consistent
    assert after == [7 * USD, 4 * USD]
    assert _balance(db, account_id) == 4 * USD


def test_a_charge_holds_the_account_it_did_not_lock_first_until_its_transaction_ends(
    db: Database, clock: ManualClock
) -> None:
    _row_locks_only(db)
    account_id = _account(db, clock, 5)
    with db.transaction() as holder:
        charge(holder, account_id=account_id, job_id="job-1", model="m", micros=USD, clock=clock)
        with (
            pytest.raises(OperationalError, match="lock timeout"),
            _another_transaction(db, lock_timeout="200ms") as other,
        ):
            lock_account(other, account_id)
    assert _balance(db, account_id) == 4 * USD


def test_a_charge_not_locked_first_is_one_statement_on_postgresql_and_two_on_sqlite(
    db: Database, clock: ManualClock
) -> None:
    """On PostgreSQL the update and the ledger row go in one statement, so the account's row
    is held one round trip less; either way the row and the balance are the charge's."""
    account_id = _account(db, clock, 5)
    with db.transaction() as session:
        session.connection()  # the transaction's BEGIN, not counted
        with recorded_statements(db) as statements:
            entry_id = charge(
                session, account_id=account_id, job_id="job-1", model="m", micros=USD, clock=clock
            )
    assert len(statements) == (1 if db.engine.dialect.name == "postgresql" else 2), statements
    with db.read() as session:
        entry = session.get(LedgerEntry, entry_id)
        assert entry is not None
        assert (entry.account_id, entry.kind, entry.job_id, entry.model) == (
            account_id,
            LedgerKind.CHARGE,
            "job-1",
            "m",
        )
        assert (entry.amount_micros, entry.balance_after_micros) == (-USD, 4 * USD)
        assert (entry.note, entry.created_at) == ("", clock.now())
        assert verify_ledger(session).consistent
        account = session.get(Account, account_id)
        assert account is not None
        # nothing else of the account changed (a charge's parameter is never a column's value)
        assert (account.kind, account.created_at) == (AccountKind.STANDARD, clock.now())
    assert _balance(db, account_id) == 4 * USD
