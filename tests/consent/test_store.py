"""The consent store's contract, run on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from videoqueue.billing.ledger import create_account
from videoqueue.billing.models import AccountKind
from videoqueue.clock import ManualClock
from videoqueue.consent import store
from videoqueue.db.session import Database

FLOW, VERSION = "seedance", "v2.0"


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def _account(db: Database, clock: ManualClock) -> str:
    with db.transaction() as session:
        return create_account(session, kind=AccountKind.STANDARD, clock=clock).id


def test_recorded_hashes_are_attested_for_their_account_and_version_only(db: Database) -> None:
    clock = ManualClock()
    alice, bob = _account(db, clock), _account(db, clock)
    with db.transaction() as session:
        store.record_consent(
            session,
            account_id=alice,
            flow=FLOW,
            version=VERSION,
            model="m",
            media=[("a" * 64, "image"), ("b" * 64, "end_image")],
            clock=clock,
        )
    with db.transaction() as session:
        hashes = ["a" * 64, "b" * 64, "c" * 64]
        assert store.attested_hashes(
            session, account_id=alice, flow=FLOW, version=VERSION, hashes=hashes
        ) == {"a" * 64, "b" * 64}
        assert (
            store.attested_hashes(
                session, account_id=bob, flow=FLOW, version=VERSION, hashes=hashes
            )
            == set()
        )
        assert (
            store.attested_hashes(
                session, account_id=alice, flow=FLOW, version="v3.0", hashes=hashes
            )
            == set()
        )


def test_listing_is_newest_first_and_deleting_erases_the_hashes(db: Database) -> None:
    clock = ManualClock()
    alice = _account(db, clock)
    with db.transaction() as session:
        first = store.record_consent(
            session,
            account_id=alice,
            flow=FLOW,
            version=VERSION,
            model="m",
            media=[("a" * 64, "image")],
            clock=clock,
        ).id
    clock.advance(5)
    with db.transaction() as session:
        second = store.record_consent(
            session,
            account_id=alice,
            flow=FLOW,
            version=VERSION,
            model="m",
            media=[("b" * 64, "reference_video")],
            clock=clock,
        ).id
    with db.transaction() as session:
        records = store.list_consents(session, account_id=alice)
        assert [r.id for r in records] == [second, first]
        assert [(m.sha256, m.role) for m in records[0].media] == [("b" * 64, "reference_video")]
    with db.transaction() as session:
        assert store.delete_consent(session, account_id=alice, record_id=first)
        assert not store.delete_consent(session, account_id=alice, record_id=first)
    with db.transaction() as session:
        assert store.attested_hashes(
            session, account_id=alice, flow=FLOW, version=VERSION, hashes=["a" * 64, "b" * 64]
        ) == {"b" * 64}
