"""Request rate limits and the failed-request budget, counted in the database (spec §3.3).

Each limit is a fixed window: the requests of one bucket (a caller, a route, a model) in
the window holding `now` are one row of `rate_limit_windows`, bumped by a single atomic
upsert. Every API process shares the rows, so a limit holds across processes and machines.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Integer, Select, bindparam, delete, func, literal, select, true
from sqlalchemy.orm import Session

from videoqueue.auth.models import RateLimitWindow
from videoqueue.clock import Clock
from videoqueue.db.base import table
from videoqueue.db.dialect import increment, writes_in_one_statement
from videoqueue.errors import VideoqueueError

RATE_WINDOW_SECONDS = 60


class RateLimitExceeded(VideoqueueError):
    """Rate limit exceeded"""

    status = 429
    code = "RATE_LIMIT_EXCEEDED"


class TooManyRequestsFromAddress(RateLimitExceeded):
    """Rate limit exceeded"""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__()
        self.retry_after_seconds = retry_after_seconds

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class TooManyFailedRequests(VideoqueueError):
    """Too many failed attempts resulting in a non-success status code."""

    status = 429

    def __init__(self, budget: int, window_seconds: int) -> None:
        super().__init__(
            f"Too many failed attempts (> {budget}) resulting in a non-success status code. "
            f"Please wait {window_seconds} seconds and try again. "
            "See https://docs.venice.ai/api-reference/rate-limiting for more information."
        )


@dataclass(frozen=True)
class RatePolicy:
    """A route's limit, and the failed-request budget every route shares."""

    requests_per_minute: int
    failure_budget: int
    failure_window_seconds: int


@dataclass(frozen=True)
class RatePolicies:
    """Every request limit of a server, built once at start-up."""

    queue: RatePolicy
    retrieve: RatePolicy
    """`/video/retrieve`'s, which `/video/complete` shares."""
    per_address: Mapping[str, int] = field(default_factory=dict)
    """Requests per minute from one client IP address, by route name (the x402 routes)."""

    def route(self, route: str) -> RatePolicy:
        """The policy of `queue`, `retrieve` or `complete`."""
        return self.queue if route == "queue" else self.retrieve


@dataclass(frozen=True)
class RateStatus:
    """Where a caller stands once a request is counted: what the headers say, and whether
    the request may go on (`refused` is None) or is answered 429."""

    policy: RatePolicy
    used: int
    """Requests in this window, this one included."""
    resets_at: datetime
    failures: int
    failures_reset_at: datetime
    failure_bucket: str
    refused: str | None = None
    """`"rate"` (too many requests) or `"failures"` (the failed-request budget is spent)."""

    @property
    def remaining(self) -> int:
        return max(0, self.policy.requests_per_minute - self.used)

    @property
    def failures_remaining(self) -> int:
        return max(0, self.policy.failure_budget - self.failures)

    def error(self) -> VideoqueueError:
        """The 429 to answer a refused request with."""
        if self.refused == "failures":
            return TooManyFailedRequests(
                self.policy.failure_budget, self.policy.failure_window_seconds
            )
        return RateLimitExceeded()

    def retry_after_seconds(self, now: datetime) -> int:
        """Whole seconds until the window that refused this request ends (at least 1)."""
        until = self.failures_reset_at if self.refused == "failures" else self.resets_at
        return _seconds_until(until, now)


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def window_start(now: datetime, seconds: int) -> datetime:
    """The start of the fixed window of `seconds` that holds `now` (aligned to the epoch)."""
    stamp = int(now.timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, UTC)


# Built once: it runs on every limited request, and building it costs more than running it.
# On the table's columns: a select of the ORM's goes through its handling of entities.
_WINDOWS = table(RateLimitWindow)
_WINDOW_COUNT = select(_WINDOWS.c.count).where(
    _WINDOWS.c.bucket == bindparam("bucket"),
    _WINDOWS.c.window_start == bindparam("start"),
)


def _count(session: Session, bucket: str, start: datetime) -> int:
    found = session.scalar(_WINDOW_COUNT, {"bucket": bucket, "start": start})
    return int(found or 0)


def _hit(session: Session, bucket: str, start: datetime) -> int:
    """Count one in the bucket's window; the window's new count."""
    count = increment(session, _WINDOWS, {"bucket": bucket, "window_start": start}, "count")
    if count == 1:
        _forget_older(session, bucket, start)
    return count


def _forget_older(session: Session, bucket: str, start: datetime) -> None:
    """After the bucket's first request in the window at `start`: its older windows are no
    longer needed."""
    session.execute(
        delete(RateLimitWindow)
        .where(RateLimitWindow.bucket == bucket, RateLimitWindow.window_start < start)
        .execution_options(synchronize_session=False)
    )


@functools.cache
def _failures_then_hit() -> Select[int, int | None]:
    """`_failures_and_hit` in one statement, for PostgreSQL (built on first use: SQLite's
    processes need not import PostgreSQL's dialect)."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    bucket, start = _WINDOWS.c.bucket, _WINDOWS.c.window_start
    failures = (
        select(func.coalesce(func.max(_WINDOWS.c.count), 0).label("n"))
        .where(
            bucket == bindparam("fail_bucket", type_=bucket.type),
            start == bindparam("fail_start", type_=start.type),
        )
        .cte("failures")
    )
    # Parameters named unlike the table's columns: SQLAlchemy would take those as values.
    counted = select(
        bindparam("rate_bucket", type_=bucket.type),
        bindparam("rate_start", type_=start.type),
        literal(1, Integer),
    ).where(failures.c.n <= bindparam("budget", type_=Integer))
    hit = (
        pg_insert(_WINDOWS)
        .from_select(["bucket", "window_start", "count"], counted)
        .on_conflict_do_update(
            index_elements=["bucket", "window_start"], set_={"count": _WINDOWS.c.count + 1}
        )
        .returning(_WINDOWS.c.count)
        .cte("hit")
    )
    return select(failures.c.n, hit.c.count).select_from(failures.outerjoin(hit, true()))


def _failures_and_hit(
    session: Session,
    *,
    fail_bucket: str,
    fail_start: datetime,
    rate_bucket: str,
    rate_start: datetime,
    budget: int,
) -> tuple[int, int | None]:
    """The failed requests in `fail_bucket`'s window, and, unless they are past `budget`,
    the rate window's new count once this request is counted in it (None: not counted).
    On PostgreSQL this is one statement and one round trip, not two."""
    if not writes_in_one_statement(session):
        failures = _count(session, fail_bucket, fail_start)
        return failures, None if failures > budget else _hit(session, rate_bucket, rate_start)
    params = {
        "fail_bucket": fail_bucket,
        "fail_start": fail_start,
        "rate_bucket": rate_bucket,
        "rate_start": rate_start,
        "budget": budget,
    }
    failures, used = session.execute(_failures_then_hit(), params).one()
    if used == 1:
        _forget_older(session, rate_bucket, rate_start)
    return int(failures), used


def admit(
    session: Session, *, caller_id: str, route: str, model: str, policy: RatePolicy, clock: Clock
) -> RateStatus:
    """Count a request against the caller's limit for this route and model.

    A caller whose failed requests for the model are over the budget is refused without
    being counted; otherwise the request is counted, and refused if that passes the limit.
    """
    now = clock.now()
    fail_bucket = f"fail:{caller_id}:{model}"
    fail_start = window_start(now, policy.failure_window_seconds)
    rate_bucket = f"rpm:{route}:{caller_id}:{model}"
    rate_start = window_start(now, RATE_WINDOW_SECONDS)
    failures, used = _failures_and_hit(
        session,
        fail_bucket=fail_bucket,
        fail_start=fail_start,
        rate_bucket=rate_bucket,
        rate_start=rate_start,
        budget=policy.failure_budget,
    )
    refused: str | None = None
    if used is None:
        used = _count(session, rate_bucket, rate_start)
        refused = "failures"
    elif used > policy.requests_per_minute:
        refused = "rate"
    return RateStatus(
        policy=policy,
        used=used,
        resets_at=rate_start + timedelta(seconds=RATE_WINDOW_SECONDS),
        failures=failures,
        failures_reset_at=fail_start + timedelta(seconds=policy.failure_window_seconds),
        failure_bucket=fail_bucket,
        refused=refused,
    )


def admit_address(
    session: Session, *, route: str, address: str, per_minute: int, clock: Clock
) -> int | None:
    """Count a request from a client address on `route`. None while it is within
    `per_minute` this minute, else the seconds until the minute ends (its Retry-After)."""
    now = clock.now()
    start = window_start(now, RATE_WINDOW_SECONDS)
    if _hit(session, f"ip:{route}:{address}", start) <= per_minute:
        return None
    return _seconds_until(start + timedelta(seconds=RATE_WINDOW_SECONDS), now)


def record_failure(session: Session, status: RateStatus, clock: Clock) -> int:
    """Count a failed (4xx other than 429) request against its failed-request budget."""
    start = window_start(clock.now(), status.policy.failure_window_seconds)
    return _hit(session, status.failure_bucket, start)
