"""Sign-in nonces are single use per wallet, on SQLite and PostgreSQL, and forgotten when old."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from videoqueue.auth.nonces import NonceReused, SignInNonce, consume_nonce
from videoqueue.clock import ManualClock
from videoqueue.db.session import Database


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def _consume(db: Database, clock: ManualClock, wallet: str, nonce: str) -> None:
    with db.transaction() as session:
        consume_nonce(
            session,
            wallet_address=wallet,
            nonce=nonce,
            keep_until=clock.now() + timedelta(seconds=330),
            clock=clock,
        )


def test_a_nonce_is_usable_once_per_wallet(db: Database) -> None:
    clock = ManualClock()
    _consume(db, clock, "0xaaa", "n0nce001")
    with pytest.raises(NonceReused):
        _consume(db, clock, "0xaaa", "n0nce001")
    _consume(db, clock, "0xbbb", "n0nce001")  # another wallet may use the same nonce


def test_remembered_nonces_are_pruned_once_expired(db: Database) -> None:
    clock = ManualClock()
    _consume(db, clock, "0xaaa", "old00001")
    clock.advance(331)
    _consume(db, clock, "0xaaa", "new00001")
    with db.transaction() as session:
        kept = list(session.scalars(select(SignInNonce.nonce)))
        assert kept == ["new00001"]
        assert session.scalar(select(func.count()).select_from(SignInNonce)) == 1
