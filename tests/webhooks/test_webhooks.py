"""Signed webhooks from the durable outbox: received by a real server on 127.0.0.1, checked
with the `standardwebhooks` package, retried after a 500, sent even when the worker sending
it is killed, refused for addresses the media guard refuses, and listed with their attempts."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from tests.conftest import Env, build_env, load_job, reap_now, wait_until
from tests.media_server import MediaServer, Received, Route
from videoqueue.clock import Clock, ManualClock, SystemClock
from videoqueue.jobs import store
from videoqueue.jobs.states import JobState
from videoqueue.outbound import webhook_terms
from videoqueue.settings import Settings
from videoqueue.webhooks.models import WebhookDelivery
from videoqueue.webhooks.sender import WebhookSender
from videoqueue.workers import Supervisor

MODEL = "wan-2.5-preview-text-to-video"
BODY = {"model": MODEL, "prompt": "tell me when", "duration": "5s", "resolution": "480p"}
app_env = contextmanager(build_env)
QUICK = {
    "media_allow_private_networks": True,  # the test's receiver is on 127.0.0.1
    "webhook_retry_delays_seconds": [0.2, 0.2],
    "webhook_poll_seconds": 0.1,
    "webhook_timeout_seconds": 10.0,
    "webhook_lease_seconds": 2.0,
}


@pytest.fixture
def hook_env(settings: Settings) -> Iterator[Env]:
    """The app with private ranges allowed (the receiver is on 127.0.0.1) and retries
    a fifth of a second apart."""
    yield from build_env(settings.model_copy(update=QUICK))


def _secret(env: Env, key: str) -> str:
    response = env.post("/webhooks/secret", {}, key)
    assert response.status_code == 200
    secret = response.json()["secret"]
    assert isinstance(secret, str) and secret.startswith("whsec_")
    return secret


def _queue(env: Env, key: str, url: str) -> str:
    response = env.post("/video/queue", {**BODY, "webhook_url": url}, key)
    assert response.status_code == 200, response.text
    return str(response.json()["queue_id"])


@dataclass(frozen=True)
class Hooked:
    """A job queued with a webhook to the test's server, by an account with a secret."""

    key: str
    secret: str
    queue_id: str

    def cancel(self, env: Env) -> None:
        response = env.post("/video/cancel", {"model": MODEL, "queue_id": self.queue_id}, self.key)
        assert response.status_code == 200


def _hooked_job(env: Env, server: MediaServer, *answers: Route) -> Hooked:
    """Queue a job whose webhook the server answers with `answers` in turn."""
    key = env.make_key()
    secret = _secret(env, key)
    return Hooked(key, secret, _queue(env, key, server.answer_posts("/hook", *answers)))


def _delivered(env: Env, key: str) -> dict[str, Any]:
    """The account's deliveries, once the newest is delivered."""
    page: dict[str, Any] = wait_until(
        lambda: (p := _deliveries(env, key))["data"][0]["status"] == "delivered" and p
    )
    return page


def _verified(secret: str, received: Received) -> dict[str, Any]:
    """The delivery's payload, once its signature checks out."""
    payload = Webhook(secret).verify(received.body, received.headers)
    assert isinstance(payload, dict)
    return payload


def _deliveries(env: Env, key: str, **query: str) -> dict[str, Any]:
    response = env.client.get(
        "/api/v1/webhooks/deliveries", params=query, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _sender(env: Env, clock: Clock) -> WebhookSender:
    """A sender in the test's process, as a worker runs one."""
    return WebhookSender(
        db=env.db, clock=clock, terms=webhook_terms(env.settings), worker_id="test"
    )


def test_queueing_a_webhook_without_a_secret_is_refused(hook_env: Env) -> None:
    key = hook_env.make_key()
    response = hook_env.post("/video/queue", {**BODY, "webhook_url": "http://127.0.0.1/h"}, key)
    assert response.status_code == 400
    assert response.json()["code"] == "WEBHOOK_SECRET_REQUIRED"
    assert "POST /api/v1/webhooks/secret" in response.json()["error"]


def test_a_webhook_changes_nothing_the_job_makes(hook_env: Env, server: MediaServer) -> None:
    job = _hooked_job(hook_env, server, Route(status=200))
    plain = hook_env.post("/video/queue", BODY, job.key).json()["queue_id"]
    hooked_spec = load_job(hook_env.db, job.queue_id).job_spec
    assert hooked_spec == load_job(hook_env.db, plain).job_spec
    assert load_job(hook_env.db, plain).webhook_url is None


@pytest.mark.parametrize("url", [5, "ftp://127.0.0.1/h", "not a url", "http://", "x" * 3000])
def test_a_malformed_webhook_url_is_a_detailed_400(hook_env: Env, url: object) -> None:
    key = hook_env.make_key()
    _secret(hook_env, key)
    response = hook_env.post("/video/queue", {**BODY, "webhook_url": url}, key)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Invalid request parameters"
    assert [issue["path"] for issue in body["issues"]] == [["webhook_url"]]
    assert body["details"]["webhook_url"]["_errors"]


@pytest.mark.parametrize(
    ("allow_private", "url"),
    [
        (False, "http://127.0.0.1:9/hook"),
        (False, "http://10.1.2.3/hook"),
        (True, "http://169.254.169.254/latest/meta-data"),  # link-local: always refused
    ],
)
def test_a_webhook_to_an_internal_address_is_refused_at_queue_time(
    settings: Settings, allow_private: bool, url: str
) -> None:
    changed = settings.model_copy(update={"media_allow_private_networks": allow_private})
    with app_env(changed) as env:
        key = env.make_key(balance_usd=1)
        _secret(env, key)
        response = env.post("/video/queue", {**BODY, "webhook_url": url}, key)
        assert response.status_code == 400
        assert response.json()["code"] == "WEBHOOK_URL_NOT_ALLOWED"
        assert "public addresses only" in response.json()["error"]
        listed = env.client.get("/api/v1/video/jobs", headers={"Authorization": f"Bearer {key}"})
        assert listed.json()["data"] == []


def test_a_delivery_answered_500_is_retried_and_listed_with_its_attempts(
    hook_env: Env, server: MediaServer
) -> None:
    job = _hooked_job(hook_env, server, Route(status=500), Route(status=204))
    job.cancel(hook_env)
    clock = ManualClock()
    sender = _sender(hook_env, clock)
    assert sender.send_due() == 1
    assert _deliveries(hook_env, job.key)["data"][0]["status"] == "pending"
    assert sender.send_due() == 0  # its retry is not due yet
    clock.advance(1)
    assert sender.send_due() == 1
    first, second = server.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.headers["webhook-timestamp"] != second.headers["webhook-timestamp"]
    payload = _verified(job.secret, second)
    assert _verified(job.secret, first) == payload

    page = _deliveries(hook_env, job.key)
    [delivery] = page["data"]
    assert delivery["id"] == first.headers["webhook-id"] and delivery["status"] == "delivered"
    assert delivery["queue_id"] == job.queue_id and delivery["event"] == "video.cancelled"
    assert delivery["payload"] == payload and delivery["next_attempt_at"] is None
    attempts = delivery["attempts"]
    assert [a["status_code"] for a in attempts] == [500, 204]
    assert attempts[0]["error"] == "answered HTTP 500" and attempts[1]["error"] is None
    assert attempts[0]["attempted_at"] < attempts[1]["attempted_at"]
    assert all(a["duration_ms"] >= 0 for a in attempts)
    assert _deliveries(hook_env, job.key, queue_id=job.queue_id) == page
    assert _deliveries(hook_env, job.key, queue_id="someone-else")["data"] == []
    assert _deliveries(hook_env, hook_env.make_key())["data"] == []


def test_deliveries_are_listed_newest_first_a_page_at_a_time(
    hook_env: Env, server: MediaServer
) -> None:
    key = hook_env.make_key()
    _secret(hook_env, key)
    url = server.answer_posts("/hook", Route(status=200))
    queued = [_queue(hook_env, key, url) for _ in range(3)]
    for queue_id in queued:
        hook_env.post("/video/cancel", {"model": MODEL, "queue_id": queue_id}, key)
    first = _deliveries(hook_env, key, limit="2")
    assert [d["queue_id"] for d in first["data"]] == queued[:0:-1]
    assert first["has_more"] is True and first["next_after"] == first["data"][-1]["id"]
    rest = _deliveries(hook_env, key, limit="2", after=first["next_after"])
    assert [d["queue_id"] for d in rest["data"]] == queued[:1]
    assert rest["has_more"] is False and rest["next_after"] is None
    headers = {"Authorization": f"Bearer {key}"}
    for query in ({"after": "msg_nobody"}, {"limit": "0"}, {"state": "x"}):
        refused = hook_env.client.get("/api/v1/webhooks/deliveries", params=query, headers=headers)
        assert refused.status_code == 400 and "error" in refused.json()


def _sending_pid(env: Env, queue_id: str) -> int:
    """The process of the worker holding the lease of the job's delivery."""
    with env.db.read() as session:
        owner = session.scalar(
            select(WebhookDelivery.lease_owner).where(WebhookDelivery.job_id == queue_id)
        )
    assert owner is not None
    return int(owner.split(":")[1])  # host:pid:hex, as `new_worker_id` makes it


def test_a_completed_job_is_delivered_even_when_the_worker_sending_it_is_killed(
    hook_env: Env, server: MediaServer
) -> None:
    # The first POST is held unanswered until the worker sending it is killed; the other
    # worker sends it again once its lease lapses.
    job = _hooked_job(hook_env, server, Route(status=200, stall_s=60), Route(status=204))
    supervisor = Supervisor(hook_env.settings, 2)
    supervisor.start()
    try:
        wait_until(lambda: server.received, timeout=90)
        assert load_job(hook_env.db, job.queue_id).state == JobState.COMPLETED
        victim = _sending_pid(hook_env, job.queue_id)
        assert victim in {p.pid for p in supervisor.processes}
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: len(server.received) >= 2, timeout=90)
        page = _delivered(hook_env, job.key)
    finally:
        supervisor.stop()
    first, second = server.received[:2]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    payload = _verified(job.secret, second)
    assert payload["type"] == "video.completed"
    data = payload["data"]
    assert data["queue_id"] == job.queue_id and data["model"] == MODEL
    assert data["status"] == "completed"
    assert data["output_bytes"] == load_job(hook_env.db, job.queue_id).output_bytes
    # The killed attempt left no answer to record; the one after it did.
    assert [a["status_code"] for a in page["data"][0]["attempts"]] == [204]


def test_a_cancelled_job_announces_its_refund(hook_env: Env, server: MediaServer) -> None:
    job = _hooked_job(hook_env, server, Route(status=200))
    job.cancel(hook_env)
    assert _sender(hook_env, SystemClock()).send_due() == 1
    payload = _verified(job.secret, server.received[0])
    assert payload["type"] == "video.cancelled"
    assert payload["data"]["status"] == "cancelled" and payload["data"]["credits_refunded"]


def test_a_job_whose_worker_was_lost_announces_its_failure(
    settings: Settings, server: MediaServer
) -> None:
    clock = ManualClock()
    with app_env(settings.model_copy(update={**QUICK, "max_attempts": 1})) as env:
        job = _hooked_job(env, server, Route(status=200))
        with env.db.transaction() as session:
            claimed = store.claim_next_job(
                session, worker_id="gone", engines=["preview"], clock=clock, lease_seconds=1
            )
            assert claimed is not None and claimed.id == job.queue_id
        clock.advance(2)
        assert reap_now(env.db, clock) == 1
        assert _sender(env, clock).send_due() == 1
        payload = _verified(job.secret, server.received[0])
        assert payload["type"] == "video.failed"
        data = payload["data"]
        assert data["status"] == "failed" and data["credits_refunded"] is True
        assert data["error"]["kind"] == "inference_failed"
        assert json.loads(server.received[0].body) == payload


def test_a_delivery_is_given_up_after_its_last_retry(hook_env: Env, server: MediaServer) -> None:
    job = _hooked_job(hook_env, server, Route(status=503))
    job.cancel(hook_env)
    clock = ManualClock()
    sender = _sender(hook_env, clock)
    for _ in range(3):  # the first attempt and the two retries of the schedule
        assert sender.send_due() == 1
        clock.advance(1)
    assert sender.send_due() == 0
    [delivery] = _deliveries(hook_env, job.key)["data"]
    assert delivery["status"] == "failed" and delivery["finished_at"] is not None
    assert [a["status_code"] for a in delivery["attempts"]] == [503, 503, 503]


def test_the_address_is_checked_again_when_the_delivery_is_sent(
    hook_env: Env, server: MediaServer
) -> None:
    job = _hooked_job(hook_env, server, Route(status=200))
    job.cancel(hook_env)
    # Allowed when queued; by the time it is sent, 127.0.0.1 resolves to cloud metadata.
    sender = WebhookSender(
        db=hook_env.db,
        clock=SystemClock(),
        terms=webhook_terms(hook_env.settings),
        worker_id="test",
        resolve=lambda host, port: ["169.254.169.254"],
    )
    assert sender.send_due() == 1
    assert server.received == []
    [delivery] = _deliveries(hook_env, job.key)["data"]
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] is None
    assert "169.254.169.254, a link-local address" in attempt["error"]
    assert delivery["status"] == "pending" and delivery["next_attempt_at"] is not None


def test_an_unreachable_webhook_is_recorded_and_retried(hook_env: Env) -> None:
    with socket.socket() as closed:  # a port nothing listens on once it is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    key = hook_env.make_key()
    _secret(hook_env, key)
    queue_id = _queue(hook_env, key, f"http://127.0.0.1:{port}/hook")
    hook_env.post("/video/cancel", {"model": MODEL, "queue_id": queue_id}, key)
    assert _sender(hook_env, ManualClock()).send_due() == 1
    [delivery] = _deliveries(hook_env, key)["data"]
    assert delivery["attempts"][0]["error"] == "could not connect"
    assert delivery["status"] == "pending"


def test_a_rotated_secret_signs_the_next_attempt(hook_env: Env, server: MediaServer) -> None:
    job = _hooked_job(hook_env, server, Route(status=500), Route(status=200))
    job.cancel(hook_env)
    clock = ManualClock()
    sender = _sender(hook_env, clock)
    sender.send_due()
    old, new = job.secret, _secret(hook_env, job.key)
    assert new != old
    clock.advance(1)
    sender.send_due()
    _verified(old, server.received[0])
    _verified(new, server.received[1])
    with pytest.raises(Exception, match="signature"):
        _verified(old, server.received[1])


def test_a_redirect_is_not_followed_but_recorded_and_retried(
    hook_env: Env, server: MediaServer
) -> None:
    elsewhere = server.answer_posts("/elsewhere", Route(status=200))
    job = _hooked_job(hook_env, server, Route(status=307, headers={"Location": elsewhere}))
    job.cancel(hook_env)
    assert _sender(hook_env, ManualClock()).send_due() == 1
    assert [received.path for received in server.received] == ["/hook"]
    [delivery] = _deliveries(hook_env, job.key)["data"]
    [attempt] = delivery["attempts"]
    assert (attempt["status_code"], attempt["error"]) == (307, "answered HTTP 307")
    assert delivery["status"] == "pending" and delivery["next_attempt_at"] is not None


def test_a_receiver_slower_than_the_timeout_is_recorded_and_retried(
    settings: Settings, server: MediaServer
) -> None:
    with app_env(settings.model_copy(update={**QUICK, "webhook_timeout_seconds": 0.5})) as env:
        job = _hooked_job(env, server, Route(status=200, stall_s=5), Route(status=204))
        job.cancel(env)
        clock = ManualClock()
        sender = _sender(env, clock)
        assert sender.send_due() == 1
        [delivery] = _deliveries(env, job.key)["data"]
        [attempt] = delivery["attempts"]
        assert (attempt["status_code"], attempt["error"]) == (None, "timed out after 0.5 s")
        assert 500 <= attempt["duration_ms"] < 5000
        assert delivery["status"] == "pending"
        clock.advance(1)
        assert sender.send_due() == 1
        assert _delivered(env, job.key)["data"][0]["attempts"][1]["status_code"] == 204


def test_the_default_schedule_retries_for_about_a_day(tmp_path: Path) -> None:
    delays = Settings(data_dir=tmp_path).webhook_retry_delays_seconds
    # As docs/webhooks.md lists them: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then 6 h.
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 21600]
    assert 23.5 * 3600 < sum(delays) <= 24 * 3600
