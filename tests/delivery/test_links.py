"""Admitting link fetches on SQLite and PostgreSQL: the cap, the burst window, revocation,
and agreement between concurrent transactions (as between API processes)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import make_tiny_job
from videoqueue.clock import ManualClock
from videoqueue.db.session import Database
from videoqueue.delivery import store as link_store
from videoqueue.delivery.links import (
    Fetch,
    LinkError,
    LinkExpired,
    LinkNotFound,
    LinkPolicy,
    LinkRevoked,
    LinkThrottled,
    LinkUsedUp,
    MediaDeleted,
    admit_fetch,
    issue_link,
    revoke_link,
)
from videoqueue.delivery.tokens import LinkClaims, LinkSigner
from videoqueue.jobs import store
from videoqueue.jobs.models import Job
from videoqueue.jobs.states import JobState

START = datetime(2026, 8, 22, 12, 0, tzinfo=UTC)
POLICY = LinkPolicy(ttl_seconds=3600, max_fetches=5, burst=3, burst_seconds=10)
SIGNER = LinkSigner(b"k" * 32)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def _job(db: Database, *, state: JobState = JobState.COMPLETED) -> str:
    clock = ManualClock(START)
    with db.transaction() as session:
        job = make_tiny_job(session, clock=clock, model="m")
        job.state = state
        job.output_key = f"jobs/{job.id}/output.mp4" if state == JobState.COMPLETED else None
        return job.id


def _issue(db: Database, job_id: str, policy: LinkPolicy = POLICY) -> LinkClaims:
    with db.transaction() as session:
        return issue_link(session, SIGNER, policy, job_id=job_id, now=START)[0]


def _admit(
    db: Database, claims: LinkClaims, at: datetime, policy: LinkPolicy = POLICY
) -> Fetch | LinkError:
    try:
        with db.transaction() as session:
            return admit_fetch(session, claims, policy, now=at)
    except LinkError as error:
        return error


def test_concurrent_fetches_never_exceed_the_cap(db: Database) -> None:
    roomy = LinkPolicy(ttl_seconds=3600, max_fetches=5, burst=1000, burst_seconds=10)
    claims = _issue(db, _job(db), roomy)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: _admit(db, claims, START, roomy), range(24)))
    served = [r for r in results if isinstance(r, Fetch)]
    assert len(served) == 5
    assert all(r.output_key is not None for r in served)
    assert all(isinstance(r, LinkUsedUp) for r in results if not isinstance(r, Fetch))


def test_a_burst_is_throttled_until_the_window_ends(db: Database) -> None:
    claims = _issue(db, _job(db))
    for _ in range(3):
        assert isinstance(_admit(db, claims, START), Fetch)
    throttled = _admit(db, claims, START + timedelta(seconds=4))
    assert isinstance(throttled, LinkThrottled)
    assert throttled.status == 429
    assert throttled.headers()["Retry-After"] == "6"
    assert isinstance(_admit(db, claims, START + timedelta(seconds=10)), Fetch)


def test_polling_before_the_video_is_ready_is_throttled_but_uses_up_nothing(db: Database) -> None:
    job_id = _job(db, state=JobState.RUNNING)
    claims = _issue(db, job_id)
    for _ in range(3):
        result = _admit(db, claims, START)
        assert isinstance(result, Fetch) and result.output_key is None
    assert isinstance(_admit(db, claims, START), LinkThrottled)
    with db.transaction() as session:
        job = store.get_job_for_update(session, job_id)
        assert job is not None
        job.state, job.output_key = JobState.COMPLETED, "jobs/x/output.mp4"
    for second in range(10, 60, 10):
        assert isinstance(_admit(db, claims, START + timedelta(seconds=second)), Fetch)
    assert isinstance(_admit(db, claims, START + timedelta(seconds=60)), LinkUsedUp)


def test_expired_revoked_and_deleted_links_are_gone(db: Database) -> None:
    job_id = _job(db)
    claims = _issue(db, job_id)
    assert isinstance(_admit(db, claims, START + timedelta(seconds=3600)), LinkExpired)
    with db.transaction() as session:
        revoke_link(session, claims, now=START)
    assert isinstance(_admit(db, claims, START), LinkRevoked)

    other = _issue(db, job_id)
    with db.transaction() as session:
        session.get_one(Job, job_id).state = JobState.DELETED
    assert isinstance(_admit(db, other, START), MediaDeleted)


def test_revoking_a_job_revokes_every_link_to_it(db: Database) -> None:
    job_id = _job(db)
    links = [_issue(db, job_id) for _ in range(3)]
    with db.transaction() as session:
        assert link_store.revoke_job_links(session, job_id, now=START) == 3
        assert link_store.revoke_job_links(session, job_id, now=START) == 0
    assert all(isinstance(_admit(db, c, START), LinkRevoked) for c in links)


def test_claims_that_do_not_match_the_row_are_not_found(db: Database) -> None:
    claims = _issue(db, _job(db))
    other_job = _job(db)
    forged = LinkClaims(link_id=claims.link_id, job_id=other_job, expires_at=claims.expires_at)
    assert isinstance(_admit(db, forged, START), LinkNotFound)
    unknown = LinkClaims(link_id="00" * 16, job_id=claims.job_id, expires_at=claims.expires_at)
    assert isinstance(_admit(db, unknown, START), LinkNotFound)
