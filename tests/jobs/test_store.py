"""The job store's contract, run on SQLite and PostgreSQL: claims, leases, lapses, money."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from tests.conftest import load_job, reap_now, retrieve_error, tiny_spec
from tests.statements import recorded_statements
from videoqueue.billing.ledger import charge, create_account, refund, top_up
from videoqueue.billing.models import Account, AccountKind, LedgerEntry, LedgerKind
from videoqueue.clock import ManualClock
from videoqueue.db.session import Database
from videoqueue.db.tables import metadata
from videoqueue.engines.base import UpstreamJob
from videoqueue.jobs import store
from videoqueue.jobs.models import Job
from videoqueue.jobs.states import InvalidTransition, JobState, check_transition

LEASE = 10.0
WORKERS = st.sampled_from(["a", "b", "c"])


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


def _account(db: Database, clock: ManualClock, *, unlimited: bool = True) -> str:
    with db.transaction() as session:
        return create_account(
            session, kind=AccountKind.STANDARD, clock=clock, unlimited=unlimited
        ).id


def _enqueue(
    db: Database,
    clock: ManualClock,
    account_id: str,
    *,
    engine: str = "preview",
    price: int = 1_000_000,
    max_attempts: int = 3,
) -> str:
    with db.transaction() as session:
        job = store.create_job(
            session,
            account_id=account_id,
            model="m",
            engine=engine,
            spec=tiny_spec(),
            price_micros=price,
            max_attempts=max_attempts,
            clock=clock,
        )
        charge(session, account_id=account_id, job_id=job.id, model="m", micros=price, clock=clock)
        return job.id


def _claim(
    db: Database, clock: ManualClock, worker: str, engines: tuple[str, ...] = ("preview",)
) -> str | None:
    with db.transaction() as session:
        job = store.claim_next_job(
            session, worker_id=worker, engines=engines, clock=clock, lease_seconds=LEASE
        )
        return job.id if job else None


def test_claims_oldest_first_and_only_for_served_engines(db: Database) -> None:
    clock = ManualClock()
    account = _account(db, clock)
    upscale = _enqueue(db, clock, account, engine="upscale")
    clock.advance(1)
    first = _enqueue(db, clock, account)
    clock.advance(1)
    second = _enqueue(db, clock, account)
    assert _claim(db, clock, "w1") == first
    assert _claim(db, clock, "w2") == second
    assert _claim(db, clock, "w3") is None
    assert _claim(db, clock, "w3", ("upscale",)) == upscale


def _positions(db: Database, clock: ManualClock, *job_ids: str) -> list[int]:
    with db.read() as session:
        jobs = [session.get(Job, job_id) for job_id in job_ids]
        return [store.queue_position(session, j, now=clock.now()) for j in jobs if j]


def test_queue_position_follows_the_claim_order_of_the_jobs_engine(db: Database) -> None:
    clock = ManualClock()
    account = _account(db, clock)
    first = _enqueue(db, clock, account)
    clock.advance(1)
    upscale = _enqueue(db, clock, account, engine="upscale")
    second, third = _enqueue(db, clock, account), _enqueue(db, clock, account)  # same instant
    assert sorted(_positions(db, clock, second, third)) == [1, 2]
    assert _positions(db, clock, first, upscale) == [0, 0]
    assert _claim(db, clock, "w1") == first
    assert sorted(_positions(db, clock, second, third)) == [0, 1]
    # A lapsed lease makes the job runnable again, ahead of those queued after it.
    clock.advance(LEASE + 1)
    assert sorted(_positions(db, clock, second, third)) == [1, 2]


def test_scrape_counts_jobs_by_state_and_the_queue_by_engine(db: Database) -> None:
    clock = ManualClock()
    account = _account(db, clock)
    oldest = clock.now()
    _enqueue(db, clock, account)
    clock.advance(5)
    _enqueue(db, clock, account)
    _enqueue(db, clock, account, engine="upscale")
    assert _claim(db, clock, "w1", ("upscale",)) is not None
    with db.read() as session:
        by_state = sorted(store.jobs_by_state_and_model(session))
        queued = store.queued_by_engine(session)
    assert by_state == [(JobState.QUEUED, "m", 2), (JobState.RUNNING, "m", 1)]
    assert queued == [("preview", 2, oldest)]


def test_a_lapsed_lease_is_claimed_again_and_the_old_owner_loses_it(db: Database) -> None:
    clock = ManualClock()
    job_id = _enqueue(db, clock, _account(db, clock))
    assert _claim(db, clock, "w1") == job_id
    clock.advance(LEASE - 1)
    assert _claim(db, clock, "w2") is None, "lease still held"
    clock.advance(2)
    assert _claim(db, clock, "w2") == job_id
    assert load_job(db, job_id).attempts == 2
    with db.transaction() as session:
        assert not store.renew_lease(
            session, job_id=job_id, worker_id="w1", clock=clock, lease_seconds=LEASE
        )
        assert store.owned_running_job(session, job_id=job_id, worker_id="w1") is None
        assert store.renew_lease(
            session, job_id=job_id, worker_id="w2", clock=clock, lease_seconds=LEASE, progress=0.5
        )
    assert load_job(db, job_id).progress == 0.5


def test_a_claim_takes_the_oldest_runnable_job_lapsed_or_queued(db: Database) -> None:
    clock = ManualClock()
    account = _account(db, clock)
    lapsed = _enqueue(db, clock, account)
    assert _claim(db, clock, "gone") == lapsed
    clock.advance(1)
    newer = _enqueue(db, clock, account)
    clock.advance(LEASE)
    assert _claim(db, clock, "w1") == lapsed, "the lapsed job was queued first"
    assert _claim(db, clock, "w2") == newer
    clock.advance(LEASE + 1)  # both lapse; a job queued since is the newest of the three
    latest = _enqueue(db, clock, account)
    assert [_claim(db, clock, w) for w in ("w3", "w4", "w5")] == [lapsed, newer, latest]
    assert _claim(db, clock, "w6") is None


def test_a_claim_does_not_sort_the_backlog(db: Database) -> None:
    """Each candidate is the first entry of `ix_jobs_state_created`: no claim gathers and
    sorts every queued job, so its cost does not grow with the backlog."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("reads SQLite's query plan")
    clock = ManualClock()
    _enqueue(db, clock, _account(db, clock))
    with recorded_statements(db) as executed:
        assert _claim(db, clock, "w") is not None
    [(sql, parameters)] = [(s, p) for s, p in executed if s.startswith("UPDATE jobs")]
    with db.engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters).all()
    nodes = {row[0]: row[3] for row in plan}
    searches = [row for row in plan if "USING INDEX ix_jobs_state_created" in row[3]]
    # Each candidate's own walk of the index, first entry first (no OR of two index walks)
    assert len(searches) == 2, plan
    assert all(nodes[row[1]].startswith("CO-ROUTINE") for row in searches), plan
    # and the only sort is of the two candidates.
    sorts = [row for row in plan if "TEMP B-TREE" in row[3]]
    assert all(nodes[row[1]].startswith("SCALAR SUBQUERY") for row in sorts), plan


def test_an_upstream_job_is_stored_only_by_the_lease_owner_and_outlives_the_attempt(
    db: Database,
) -> None:
    clock = ManualClock()
    job_id = _enqueue(db, clock, _account(db, clock))
    _claim(db, clock, "w1")
    upstream = UpstreamJob("up-1", "https://upstream.example/v1/share/read/t")
    with db.transaction() as session:
        assert not store.record_upstream_job(
            session, job_id=job_id, worker_id="w2", upstream=UpstreamJob("up-2")
        )
        assert store.record_upstream_job(session, job_id=job_id, worker_id="w1", upstream=upstream)
    clock.advance(LEASE + 1)
    assert _claim(db, clock, "w2") == job_id
    assert load_job(db, job_id).upstream == upstream


def test_an_upstream_job_started_for_an_ended_job_is_stored_to_be_released(
    db: Database,
) -> None:
    clock = ManualClock()
    job_id = _enqueue(db, clock, _account(db, clock))
    _claim(db, clock, "w1")
    with db.transaction() as session:
        job = store.get_job_for_update(session, job_id)
        assert job is not None
        store.cancel_job(session, job, clock=clock, refunded=True)
    with db.transaction() as session:
        assert not store.record_upstream_job(
            session, job_id=job_id, worker_id="w1", upstream=UpstreamJob("up-1")
        )
    with db.read() as session:
        (due,) = store.unreleased_upstream_jobs(session, engines=["preview"], limit=10)
        assert (due.id, due.upstream) == (job_id, UpstreamJob("up-1"))
    with db.transaction() as session:
        store.mark_upstream_released(session, job_id=job_id, queue_id="up-1", clock=clock)
    with db.read() as session:
        assert store.unreleased_upstream_jobs(session, engines=["preview"], limit=10) == []


def test_a_running_job_s_upstream_job_is_never_due_for_release(db: Database) -> None:
    clock = ManualClock()
    job_id = _enqueue(db, clock, _account(db, clock))
    _claim(db, clock, "w1")
    clock.advance(LEASE + 1)
    assert _claim(db, clock, "w2") == job_id
    with db.transaction() as session:
        # The stale worker's engine started one: it is the other worker's to store.
        assert not store.record_upstream_job(
            session, job_id=job_id, worker_id="w1", upstream=UpstreamJob("up-1")
        )
        assert store.record_upstream_job(
            session, job_id=job_id, worker_id="w2", upstream=UpstreamJob("up-1")
        )
    with db.read() as session:
        assert store.unreleased_upstream_jobs(session, engines=["preview"], limit=10) == []
    assert load_job(db, job_id).upstream_released_at is None


def test_renewing_keeps_the_lease(db: Database) -> None:
    clock = ManualClock()
    job_id = _enqueue(db, clock, _account(db, clock))
    _claim(db, clock, "w1")
    for _ in range(5):
        clock.advance(LEASE - 1)
        with db.transaction() as session:
            assert store.renew_lease(
                session, job_id=job_id, worker_id="w1", clock=clock, lease_seconds=LEASE
            )
        assert _claim(db, clock, "w2") is None


def test_last_attempt_lapsing_fails_the_job_and_refunds_once(db: Database) -> None:
    clock = ManualClock()
    account = _account(db, clock, unlimited=False)
    with db.transaction() as session:
        top_up(session, account_id=account, micros=5_000_000, clock=clock)
    job_id = _enqueue(db, clock, account, max_attempts=1)
    _claim(db, clock, "w1")
    clock.advance(LEASE + 1)
    assert _claim(db, clock, "w2") is None, "no attempts left"
    assert reap_now(db, clock) == 1
    assert reap_now(db, clock) == 0
    job = load_job(db, job_id)
    status, body = retrieve_error(job)
    assert job.state == JobState.FAILED and status == 500
    assert body["credits_refunded"] is True
    with db.transaction() as session:
        assert refund(session, job_id=job_id, clock=clock) is None, "second refund is a no-op"
        balance = session.get(Account, account)
        assert balance is not None and balance.balance_micros == 5_000_000


def test_concurrent_claims_never_hand_one_job_to_two_workers(db: Database) -> None:
    clock = ManualClock()
    account = _account(db, clock)
    jobs = {_enqueue(db, clock, account) for _ in range(12)}
    claimed: list[str] = []
    lock = threading.Lock()

    def claim_all(name: str) -> None:
        while (job_id := _claim(db, clock, name)) is not None:
            with lock:
                claimed.append(job_id)

    threads = [threading.Thread(target=claim_all, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(jobs)


def test_transition_table_refuses_going_back_from_a_final_state() -> None:
    check_transition(JobState.QUEUED, JobState.RUNNING)
    with pytest.raises(InvalidTransition):
        check_transition(JobState.COMPLETED, JobState.RUNNING)
    with pytest.raises(InvalidTransition):
        check_transition(JobState.DELETED, JobState.COMPLETED)


def test_average_execution_time_is_the_p80_of_recent_runs(db: Database) -> None:
    clock = ManualClock()
    account = _account(db, clock)
    assert _average(db) == 7_000
    for seconds in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10):
        job_id = _enqueue(db, clock, account)
        _claim(db, clock, "w")
        clock.advance(seconds)
        with db.transaction() as session:
            assert store.complete_owned_job(
                session, job_id=job_id, worker_id="w", output_key="k", output_bytes=1, clock=clock
            )
    assert _average(db) == 8_000


def _average(db: Database) -> int:
    with db.transaction() as session:
        return store.average_execution_ms(session, "m", 7_000)


class LeaseMachine(RuleBasedStateMachine):
    """Random claims, heartbeats, clock moves, completions and crashes never break the rules:
    one owner per running job, a job completes at most once, and money balances."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.directory = tempfile.TemporaryDirectory()
        self.db = Database(f"sqlite:///{self.directory.name}/machine.sqlite")
        metadata.create_all(self.db.engine)
        self.account = _account(self.db, self.clock)
        self.held: dict[str, str] = {}  # worker → job it believes it holds
        self.incarnation: dict[str, int] = {}  # a crashed worker comes back with a new id
        self.completed: set[str] = set()
        self.jobs: set[str] = set()

    @rule()
    def enqueue(self) -> None:
        self.jobs.add(_enqueue(self.db, self.clock, self.account, max_attempts=2))

    @rule(name=WORKERS)
    def claim(self, name: str) -> None:
        worker = self._id(name)
        if worker in self.held:
            return
        job_id = _claim(self.db, self.clock, worker)
        if job_id is not None:
            assert job_id not in self.completed
            self.held[worker] = job_id

    @rule(name=WORKERS)
    def heartbeat(self, name: str) -> None:
        worker = self._id(name)
        if worker not in self.held:
            return
        with self.db.transaction() as session:
            if not store.renew_lease(
                session,
                job_id=self.held[worker],
                worker_id=worker,
                clock=self.clock,
                lease_seconds=LEASE,
            ):
                del self.held[worker]

    @rule(name=WORKERS)
    def finish(self, name: str) -> None:
        worker = self._id(name)
        if worker not in self.held:
            return
        job_id = self.held.pop(worker)
        with self.db.transaction() as session:
            if store.complete_owned_job(
                session,
                job_id=job_id,
                worker_id=worker,
                output_key="k",
                output_bytes=1,
                clock=self.clock,
            ):
                assert job_id not in self.completed
                self.completed.add(job_id)

    @rule(worker=WORKERS)
    def crash(self, worker: str) -> None:
        self.held.pop(self._id(worker), None)
        self.incarnation[worker] = self.incarnation.get(worker, 0) + 1

    def _id(self, worker: str) -> str:
        return f"{worker}{self.incarnation.get(worker, 0)}"

    @rule(seconds=st.sampled_from([1.0, 6.0, 11.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: bool(self.jobs))
    @rule()
    def reap(self) -> None:
        reap_now(self.db, self.clock)

    @invariant()
    def money_and_ownership_hold(self) -> None:
        with self.db.transaction() as session:
            running = session.execute(
                select(Job.id, Job.lease_owner).where(Job.state == JobState.RUNNING)
            ).all()
            owners = [owner for _, owner in running]
            assert len(owners) == len(set(owners)), "a worker owns two jobs"
            refunds = (
                session.scalar(
                    select(func.count())
                    .select_from(LedgerEntry)
                    .where(LedgerEntry.kind == LedgerKind.REFUND)
                )
                or 0
            )
            failed = (
                session.scalar(
                    select(func.count()).select_from(Job).where(Job.state == JobState.FAILED)
                )
                or 0
            )
            assert refunds == failed
            account = session.get(Account, self.account)
            total = (
                session.scalar(
                    select(func.sum(LedgerEntry.amount_micros)).where(
                        LedgerEntry.account_id == self.account
                    )
                )
                or 0
            )
            assert account is not None and account.balance_micros == total

    def teardown(self) -> None:
        self.db.dispose()
        self.directory.cleanup()


def test_lease_state_machine() -> None:
    run_state_machine_as_test(
        LeaseMachine,
        settings=settings(
            max_examples=15,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
