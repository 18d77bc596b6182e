"""Wallet accounts and their in-flight request slots, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from videoqueue.billing.models import AccountKind
from videoqueue.billing.wallets import (
    ConcurrencyLimit,
    acquire_request_slot,
    normalize_wallet,
    release_request_slot,
    wallet_account,
)
from videoqueue.clock import ManualClock
from videoqueue.db.session import Database

EVM = "0x2670B922ef37C7Df47158725C0CC407b5382293F"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def test_addresses_are_normalised_evm_lower_case_solana_as_given() -> None:
    assert normalize_wallet(EVM) == EVM.lower()
    solana = "8qUL23aSj7mDWdoLMXGHFvnVCT9wd7jXcysiekroADEL"
    assert normalize_wallet(solana) == solana
    assert normalize_wallet("0x123") is None
    assert normalize_wallet("not a wallet") is None


def test_a_wallet_gets_one_account(db: Database) -> None:
    clock = ManualClock()
    with db.transaction() as session:
        first = wallet_account(session, EVM.lower(), clock)
    with db.transaction() as session:
        again = wallet_account(session, EVM.lower(), clock)
    assert first.id == again.id
    assert again.kind == AccountKind.WALLET and again.wallet_address == EVM.lower()


def _slot(db: Database, account_id: str, clock: ManualClock) -> str:
    with db.transaction() as session:
        return acquire_request_slot(
            session, account_id=account_id, limit=5, ttl_seconds=60, clock=clock
        )


def test_a_wallet_has_at_most_five_requests_in_flight(db: Database) -> None:
    clock = ManualClock()
    with db.transaction() as session:
        account_id = wallet_account(session, EVM.lower(), clock).id
    slots = [_slot(db, account_id, clock) for _ in range(5)]
    with pytest.raises(ConcurrencyLimit):
        _slot(db, account_id, clock)
    with db.transaction() as session:
        release_request_slot(session, slots[0])
    _slot(db, account_id, clock)


def test_slots_of_a_crashed_process_expire(db: Database) -> None:
    clock = ManualClock()
    with db.transaction() as session:
        account_id = wallet_account(session, EVM.lower(), clock).id
    for _ in range(5):
        _slot(db, account_id, clock)
    clock.advance(61)
    _slot(db, account_id, clock)
