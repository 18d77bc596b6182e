"""The `venice` engine against a second videoqueue on 127.0.0.1: a real HTTP hop, real MP4s
from the upstream's preview engine, and processes killed outright on either side. In every
case one of our jobs makes at most one upstream job, and both ledgers verify."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import load_job, tiny_spec, wait_until
from tests.engines.videoqueue_servers import (
    BALANCE_MICROS,
    RELAY_MODEL,
    RELAY_REQUEST,
    Relay,
    VideoqueueServer,
    assert_a_job_killed_on_each_attempt_is_refunded_and_released,
    assert_mp4_of_the_request,
    held_upstream,
    relay_through,
)
from videoqueue.billing.ledger import create_account
from videoqueue.billing.models import AccountKind
from videoqueue.clock import SystemClock
from videoqueue.db.migrate import upgrade
from videoqueue.db.session import Database
from videoqueue.engines.base import JobInput, UpstreamJob
from videoqueue.engines.venice import load
from videoqueue.jobs import store
from videoqueue.jobs.states import JobState
from videoqueue.jobs.worker import Worker
from videoqueue.storage.local import LocalStorage

MODEL = RELAY_MODEL
PRIVATE_MODEL = "relay-private-t2v"
"""Delivered upstream only at a `download_url` (spec §8); here as bytes."""
PRICE_MICROS = 10_000  # 1 s at 256p, $0.01 a second
REFUSED_WORD = "forbidden"
REQUEST = {"model": MODEL, **RELAY_REQUEST}
COMPLETE = "POST /api/v1/video/complete"
REQUESTS = ("POST /api/v1/video/queue", COMPLETE)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def catalog(engine: str, *, private_delivery: str = "bytes") -> str:
    """Two 1 s, 256p models on `engine`; the private one is delivered as `private_delivery`."""
    return "".join(
        f"""
[models."{model}"]
name = "Relay"
created = 1767225600
engine = "{engine}"
delivery = "{delivery}"
price = {{ rule = "per_second", rates = {{ "256p" = 0.01 }} }}

[models."{model}".constraints]
model_type = "text-to-video"
durations = ["1s"]
resolutions = ["256p"]
aspect_ratios = ["1:1"]
audio = false
audio_configurable = false
"""
        for model, delivery in ((MODEL, "bytes"), (PRIVATE_MODEL, private_delivery))
    )


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    return tmp_path / "gate"


@pytest.fixture
def upstream(tmp_path: Path, gate: Path) -> Iterator[VideoqueueServer]:
    """A videoqueue whose jobs wait for `gate`, and which refuses prompts with REFUSED_WORD."""
    server = held_upstream(
        tmp_path / "upstream",
        catalog("gated", private_delivery="download_url"),
        gate,
        {"VIDEOQUEUE_CONTENT_POLICY_RULES": json.dumps([{"pattern": REFUSED_WORD}])},
    )
    try:
        server.start()
        yield server
    finally:
        server.kill()


def factory(upstream: VideoqueueServer) -> str:
    return (
        f"videoqueue.engines.venice:load?base_url={quote(upstream.base_url)}"
        "&api_key_env=UPSTREAM_VIDEOQUEUE_KEY&poll_seconds=0.2&max_poll_seconds=0.5"
        "&retry_seconds=120"
    )


@contextmanager
def relaying(
    tmp_path: Path, upstream: VideoqueueServer, gate: Path, **environment: str
) -> Iterator[Relay]:
    """Our server, forwarding to `upstream`, its settings changed by `environment`."""
    with relay_through(
        tmp_path / "ours",
        catalog("upstream"),
        factory(upstream),
        upstream,
        gate,
        REQUESTS,
        environment,
    ) as r:
        yield r


@pytest.fixture
def relay(tmp_path: Path, upstream: VideoqueueServer, gate: Path) -> Iterator[Relay]:
    with relaying(tmp_path, upstream, gate) as relay:
        yield relay


def queued_upstream(upstream: VideoqueueServer) -> str:
    """The `queue_id` of a job queued on `upstream` directly (with its own key)."""
    queued = httpx.post(
        f"{upstream.base_url}/video/queue",
        json={**REQUEST, "prompt": "a lighthouse at dusk"},
        headers={"Authorization": f"Bearer {upstream.key}"},
        timeout=30,
    )
    assert queued.status_code == 200, queued.text
    return str(queued.json()["queue_id"])


def test_an_attempt_given_its_upstream_job_polls_that_job_and_queues_none(
    upstream: VideoqueueServer, gate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_id = queued_upstream(upstream)
    monkeypatch.setenv("THE_KEY", upstream.key)
    engine = load(base_url=upstream.base_url, api_key_env="THE_KEY", poll_seconds="0.2")
    job = JobInput(
        job_id="a-later-attempt",
        model=MODEL,
        width=256,
        height=256,
        frame_count=24,
        duration_s=1.0,
        audio=False,
        upstream=UpstreamJob(queue_id),
    )
    fractions: list[float] = []

    def progress(fraction: float) -> None:
        fractions.append(fraction)
        gate.touch()  # the upstream finishes once it has been polled

    try:
        info = engine.generate(job, tmp_path / "out.mp4", progress)
    finally:
        engine.close()

    assert (info.width, info.height, info.frames) == (256, 256, 24)
    assert_mp4_of_the_request((tmp_path / "out.mp4").read_bytes())
    assert fractions and all(0 <= f <= 0.95 for f in fractions)
    (upstream_job,) = upstream.jobs()
    assert upstream_job.state == JobState.COMPLETED  # its worker releases it, not generate


def test_release_completes_the_upstream_job_and_one_already_gone_counts_as_released(
    upstream: VideoqueueServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_id = queued_upstream(upstream)
    monkeypatch.setenv("THE_KEY", upstream.key)
    engine = load(base_url=upstream.base_url, api_key_env="THE_KEY")
    running = UpstreamJob(queue_id)
    try:
        engine.release(running, MODEL)
        (upstream_job,) = upstream.jobs()
        assert upstream_job.state == JobState.DELETED
        assert upstream_job.output_key is None
        engine.release(UpstreamJob("00000000-0000-0000-0000-000000000000"), MODEL)  # a 404
    finally:
        engine.close()
    assert upstream.ledger_consistent()


def test_a_job_runs_upstream_and_its_mp4_comes_back(relay: Relay) -> None:
    relay.gate.touch()
    job_id = relay.queue("a lighthouse at dusk")

    job = relay.finished(job_id)

    assert job.state == JobState.COMPLETED, job.failure
    response = relay.retrieve(job_id)
    assert response.headers["content-type"] == "video/mp4"
    assert_mp4_of_the_request(response.content)
    relay.assert_one_upstream_job_and_books_balanced(job)
    (upstream_job,) = relay.upstream.jobs()
    assert upstream_job.state == JobState.DELETED  # our engine completed it upstream
    assert relay.ours.balance_micros() == BALANCE_MICROS - PRICE_MICROS
    assert relay.upstream.balance_micros() == BALANCE_MICROS - PRICE_MICROS


def test_a_private_model_s_video_is_fetched_from_its_download_url(relay: Relay) -> None:
    relay.gate.touch()
    job_id = relay.queue("a lighthouse at dusk", PRIVATE_MODEL)

    job = relay.finished(job_id)

    assert job.state == JobState.COMPLETED, job.failure
    assert job.upstream_download_url is not None
    assert "/share/read/" in job.upstream_download_url
    assert_mp4_of_the_request(relay.retrieve(job_id, PRIVATE_MODEL).content)
    assert (
        "videoqueue.api.requests GET /v1/share/read/{token} 200 " in relay.upstream.log.read_text()
    )
    relay.assert_one_upstream_job_and_books_balanced(job)


def test_a_content_policy_refusal_upstream_is_ours_and_refunded_on_both_sides(
    relay: Relay,
) -> None:
    relay.gate.touch()
    job_id = relay.queue("policy")

    job = relay.finished(job_id)

    response = relay.retrieve(job_id)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "provider_content_policy"
    assert error["credits_refunded"] is True
    assert error["recommended_model"] == "wan-2-7-text-to-video"
    relay.assert_one_upstream_job_and_books_balanced(job)
    assert relay.ours.balance_micros() == BALANCE_MICROS
    assert relay.upstream.balance_micros() == BALANCE_MICROS


def test_a_prompt_the_upstream_refuses_at_queue_time_fails_ours_refunded(relay: Relay) -> None:
    job_id = relay.queue(f"something {REFUSED_WORD}")

    job = relay.finished(job_id)

    response = relay.retrieve(job_id)
    assert response.status_code == 422
    assert response.json()["error"]["credits_refunded"] is True
    assert job.upstream_queue_id is None
    assert relay.upstream.jobs() == []
    assert relay.ours.balance_micros() == BALANCE_MICROS
    assert relay.ours.ledger_consistent() and relay.upstream.ledger_consistent()


def test_the_upstream_killed_while_polled_and_restarted_finishes_the_same_job(
    relay: Relay,
) -> None:
    job_id = relay.queue("a lighthouse at dusk")
    relay.recorded_upstream(job_id)

    relay.upstream.kill()
    wait_until(lambda: "upstream retrieve: ConnectError" in relay.ours.log.read_text())
    relay.upstream.start()
    relay.gate.touch()
    job = relay.finished(job_id)

    assert job.state == JobState.COMPLETED, job.failure
    assert job.attempts == 1
    assert_mp4_of_the_request(relay.retrieve(job_id).content)
    relay.assert_one_upstream_job_and_books_balanced(job)


def test_our_worker_killed_while_polling_resumes_the_same_upstream_job(relay: Relay) -> None:
    job_id = relay.queue("a lighthouse at dusk")
    running = relay.recorded_upstream(job_id)
    assert running.lease_owner is not None
    killed = running.lease_owner

    os.kill(int(killed.split(":")[1]), signal.SIGKILL)
    resumed = wait_until(
        lambda: (job := relay.our_job(job_id)).lease_owner not in (None, killed) and job,
        timeout=120,
    )
    relay.gate.touch()
    job = relay.finished(job_id)

    assert resumed.attempts == 2
    assert resumed.upstream_queue_id == running.upstream_queue_id
    assert job.state == JobState.COMPLETED, job.failure
    assert_mp4_of_the_request(relay.retrieve(job_id).content)
    relay.assert_one_upstream_job_and_books_balanced(job)
    assert relay.ours.balance_micros() == BALANCE_MICROS - PRICE_MICROS


def test_a_job_cancelled_while_it_runs_upstream_is_cancelled_there(relay: Relay) -> None:
    job_id = relay.queue("a lighthouse at dusk")
    running = relay.recorded_upstream(job_id)

    completed = httpx.post(
        f"{relay.ours.base_url}/video/complete",
        json={"model": MODEL, "queue_id": job_id},
        headers={"Authorization": f"Bearer {relay.ours.key}"},
        timeout=30,
    )
    assert completed.status_code == 200, completed.text

    upstream_job = relay.upstream_job_ended()
    assert upstream_job.id == running.upstream_queue_id
    assert upstream_job.state in (JobState.CANCELLED, JobState.DELETED)
    assert upstream_job.output_key is None
    assert relay.ours.ledger_consistent() and relay.upstream.ledger_consistent()


def test_a_job_whose_every_attempt_is_killed_is_refunded_and_completed_upstream(
    tmp_path: Path, upstream: VideoqueueServer, gate: Path
) -> None:
    with relaying(tmp_path, upstream, gate, VIDEOQUEUE_MAX_ATTEMPTS="2") as relay:
        assert_a_job_killed_on_each_attempt_is_refunded_and_released(relay, attempts=2)


def test_a_job_cancelled_while_no_worker_holds_it_is_completed_upstream_by_a_sweep(
    tmp_path: Path, upstream: VideoqueueServer, gate: Path
) -> None:
    # A lease long enough that the job is cancelled before a worker could claim it again.
    with relaying(tmp_path, upstream, gate, VIDEOQUEUE_LEASE_SECONDS="10") as relay:
        job_id = relay.queue("a lighthouse at dusk")
        running = relay.recorded_upstream(job_id)
        assert running.lease_owner is not None

        os.kill(int(running.lease_owner.split(":")[1]), signal.SIGKILL)
        cancelled = httpx.post(
            f"{relay.ours.base_url}/video/cancel",
            json={"model": MODEL, "queue_id": job_id},
            headers={"Authorization": f"Bearer {relay.ours.key}"},
            timeout=30,
        )
        assert cancelled.status_code == 200, cancelled.text
        assert relay.our_job(job_id).attempts == 1

        job = relay.released(job_id)
        assert job.state == JobState.CANCELLED
        assert job.attempts == 1
        assert relay.ours.balance_micros() == BALANCE_MICROS
        relay.assert_released_upstream(job)


def test_a_worker_whose_lease_went_to_another_leaves_the_upstream_job_to_it(
    tmp_path: Path, upstream: VideoqueueServer, gate: Path
) -> None:
    with relaying(tmp_path, upstream, gate, VIDEOQUEUE_WORKERS="2") as relay:
        job_id = relay.queue("a lighthouse at dusk")
        running = relay.recorded_upstream(job_id)
        assert running.lease_owner is not None
        stale = running.lease_owner
        pid = int(stale.split(":")[1])

        # Frozen past its lease, the worker wakes to find the job another worker's: it stops
        # its engine, which must not complete the upstream job the other one polls.
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_until(lambda: relay.our_job(job_id).lease_owner not in (None, stale), 120)
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_until(lambda: "no longer ours (cancelled)" in relay.ours.log.read_text(), 60)
        relay.gate.touch()
        job = relay.finished(job_id)

        assert job.state == JobState.COMPLETED, job.failure
        assert job.attempts == 2
        assert_mp4_of_the_request(relay.retrieve(job_id).content)
        assert relay.released(job_id).upstream_released_at is not None
        wait_until(lambda: upstream.requests(COMPLETE) == 1)
        relay.assert_one_upstream_job_and_books_balanced(job)
        assert relay.ours.balance_micros() == BALANCE_MICROS - PRICE_MICROS


def test_a_sweep_releases_an_ended_job_s_upstream_job_once(
    upstream: VideoqueueServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_id = queued_upstream(upstream)
    url = f"sqlite:///{tmp_path / 'ours.db'}"
    upgrade(url)
    db, clock = Database(url), SystemClock()
    with db.transaction() as session:
        # A job cancelled while it ran upstream, its worker gone.
        account = create_account(session, kind=AccountKind.STANDARD, clock=clock)
        job = store.create_job(
            session,
            account_id=account.id,
            model=MODEL,
            engine="upstream",
            spec=tiny_spec("a lighthouse at dusk"),
            price_micros=0,
            max_attempts=1,
            clock=clock,
        )
        store.claim_next_job(
            session, worker_id="gone", engines=["upstream"], clock=clock, lease_seconds=30
        )
        upstream_job = UpstreamJob(queue_id)
        store.record_upstream_job(session, job_id=job.id, worker_id="gone", upstream=upstream_job)
        store.cancel_job(session, job, clock=clock, refunded=False)
    monkeypatch.setenv("THE_KEY", upstream.key)
    engine = load(base_url=upstream.base_url, api_key_env="THE_KEY")
    worker = Worker(
        db=db,
        storage=LocalStorage(tmp_path / "media"),
        engines={"upstream": engine},
        clock=clock,
        lease_seconds=30,
        heartbeat_seconds=1,
    )
    models = "GET /api/v1/models"
    try:
        worker.reaper_step()
        (upstream_row,) = upstream.jobs()
        assert upstream_row.state == JobState.DELETED
        assert load_job(db, job.id).upstream_released_at is not None
        wait_until(lambda: upstream.requests(COMPLETE) == 1)

        worker.reaper_step()
        # A request after the second sweep: once the upstream has logged it, it has logged
        # any call the sweep made.
        seen = upstream.requests(models)
        assert httpx.get(f"{upstream.base_url}/models", timeout=30).status_code == 200
        wait_until(lambda: upstream.requests(models) > seen)
        assert upstream.requests(COMPLETE) == 1
    finally:
        engine.close()
        db.dispose()
    assert upstream.ledger_consistent()


def test_an_engine_without_its_key_in_the_environment_does_not_set_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(ValueError, match="NO_SUCH_KEY holds no API key"):
        load(base_url="http://127.0.0.1:9/api/v1", api_key_env="NO_SUCH_KEY")


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan"])
def test_a_poll_pause_must_be_a_positive_number(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("THE_KEY", "k")
    with pytest.raises(ValueError, match="poll_seconds must be a positive number"):
        load(base_url="http://127.0.0.1:9/api/v1", api_key_env="THE_KEY", poll_seconds=value)
