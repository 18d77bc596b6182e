"""`admit` on both databases: the count, the two refusals, and what a count costs in statements."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from tests.statements import recorded_statements
from videoqueue.auth.models import RateLimitWindow
from videoqueue.auth.rate_limits import RatePolicy, RateStatus, admit, record_failure
from videoqueue.clock import ManualClock
from videoqueue.db.session import Database

POLICY = RatePolicy(requests_per_minute=5, failure_budget=2, failure_window_seconds=30)
START = datetime(2026, 12, 8, 10, 0, 0, tzinfo=UTC)


def _admit(db: Database, clock: ManualClock) -> RateStatus:
    with db.transaction() as session:
        return admit(
            session, caller_id="key-1", route="queue", model="m", policy=POLICY, clock=clock
        )


def _windows(db: Database) -> list[tuple[str, datetime, int]]:
    with db.read() as session:
        rows = session.execute(
            select(
                RateLimitWindow.bucket, RateLimitWindow.window_start, RateLimitWindow.count
            ).order_by(RateLimitWindow.bucket, RateLimitWindow.window_start)
        )
        return [(bucket, start, count) for bucket, start, count in rows]


def test_requests_are_counted_until_the_limit_refuses_them(db: Database) -> None:
    clock = ManualClock(START)
    statuses = [_admit(db, clock) for _ in range(6)]
    assert [s.used for s in statuses] == [1, 2, 3, 4, 5, 6]
    assert [s.refused for s in statuses] == [None] * 5 + ["rate"]
    assert [s.remaining for s in statuses] == [4, 3, 2, 1, 0, 0]
    assert statuses[-1].failures == 0
    assert _windows(db) == [("rpm:queue:key-1:m", START, 6)]


def test_past_the_failure_budget_a_request_is_refused_and_not_counted(db: Database) -> None:
    clock = ManualClock(START)
    counted = _admit(db, clock)
    for _ in range(POLICY.failure_budget):
        with db.transaction() as session:
            record_failure(session, counted, clock)
    # At the budget a request still goes on; past it, none does, and none is counted.
    assert (_admit(db, clock).refused, _admit(db, clock).used) == (None, 3)
    with db.transaction() as session:
        record_failure(session, counted, clock)
    refused = _admit(db, clock)
    assert (refused.refused, refused.used, refused.failures) == ("failures", 3, 3)
    assert _windows(db) == [
        ("fail:key-1:m", START, 3),
        ("rpm:queue:key-1:m", START, 3),
    ]
    # The failure window ends: the request is counted again.
    clock.advance(POLICY.failure_window_seconds)
    again = _admit(db, clock)
    assert (again.refused, again.used, again.failures) == (None, 4, 0)


def test_a_new_window_s_first_request_forgets_the_bucket_s_older_windows(db: Database) -> None:
    clock = ManualClock(START)
    _admit(db, clock)
    _admit(db, clock)
    clock.advance(60)
    status = _admit(db, clock)
    assert (status.used, status.refused) == (1, None)
    assert _windows(db) == [("rpm:queue:key-1:m", datetime(2026, 12, 8, 10, 1, tzinfo=UTC), 1)]


def test_a_count_is_one_statement_on_postgresql_and_two_on_sqlite(db: Database) -> None:
    """The failed-request count and the rate window's count travel together on PostgreSQL:
    one round trip for every limited request (queue, retrieve, complete)."""
    clock = ManualClock(START)
    _admit(db, clock)  # the window's first request also forgets older ones
    with db.transaction() as session:
        session.connection()  # the transaction's BEGIN, not counted
        with recorded_statements(db) as statements:
            status = admit(
                session, caller_id="key-1", route="queue", model="m", policy=POLICY, clock=clock
            )
    assert len(statements) == (1 if db.engine.dialect.name == "postgresql" else 2), statements
    assert (status.used, status.refused) == (2, None)
