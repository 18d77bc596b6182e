"""`/metrics` in one process: who may read it, the queue's gauges, requests by route template."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Env, build_env
from videoqueue.clock import ManualClock
from videoqueue.settings import Settings

MODEL = "wan-2.5-preview-text-to-video"
REQUESTS = "videoqueue_http_request_duration_seconds"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, keyed by its name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def scrape(env: Env) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = env.client.get("/metrics", headers={"Authorization": f"Bearer {env.admin_key}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def test_off_loopback_metrics_need_an_admin_key(env: Env) -> None:
    # The test client's address is not a loopback one.
    for headers in ({}, {"Authorization": f"Bearer {env.make_key()}"}):
        response = env.client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "Admin API key required"}
    response = env.client.get("/metrics", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 401
    assert isinstance(response.json()["error"], str)
    assert scrape(env)  # the operator's admin key


@pytest.fixture
def open_env(settings: Settings) -> Iterator[Env]:
    yield from build_env(settings.model_copy(update={"metrics_access": "open"}))


def test_open_metrics_need_no_key(open_env: Env) -> None:
    response = open_env.client.get("/metrics")
    assert response.status_code == 200
    assert "videoqueue_queue_depth" in response.text


@pytest.fixture
def clocked_env(settings: Settings, clock: ManualClock) -> Iterator[Env]:
    yield from build_env(settings, clock=clock)


def test_queue_gauges_come_from_the_database(clocked_env: Env, clock: ManualClock) -> None:
    env = clocked_env
    key = env.make_key()
    before = scrape(env)
    assert value(before, "videoqueue_jobs", state="queued", model=MODEL) == 0
    for prompt in ("one", "two"):
        body = {"model": MODEL, "prompt": prompt, "duration": "5s"}
        assert env.post("/video/queue", body, key).status_code == 200
        clock.advance(30)
    clock.advance(60)
    after = scrape(env)
    assert value(after, "videoqueue_jobs", state="queued", model=MODEL) == 2
    engines = {
        dict(labels)["engine"]: v
        for (name, labels), v in after.items()
        if name == "videoqueue_queue_depth"
    }
    assert sum(engines.values()) == 2
    (engine,) = engines
    # The oldest job was queued 30 + 30 + 60 s before the scrape (the newer one 90 s).
    assert after[("videoqueue_queue_oldest_age_seconds", frozenset({("engine", engine)}))] == 120


def test_requests_are_counted_by_route_template_and_status(env: Env) -> None:
    key = env.make_key()
    count = f"{REQUESTS}_count"
    retrieve = {"method": "POST", "route": "/api/v1/video/retrieve", "status": "404"}
    share = {"method": "GET", "route": "/v1/share/read/{token}", "status": "404"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    before = scrape(env)
    body = {"model": MODEL, "queue_id": "00000000-0000-0000-0000-000000000000"}
    assert env.post("/video/retrieve", body, key).status_code == 404
    assert env.client.get("/v1/share/read/some-token").status_code == 404
    assert env.client.get("/no/such/path").status_code == 404
    after = scrape(env)
    for labels in (retrieve, share, unmatched):
        assert value(after, count, **labels) == value(before, count, **labels) + 1, labels
    assert not any(dict(labels).get("route", "").endswith("some-token") for _, labels in after)


def test_a_request_id_is_kept_or_made_and_answered(env: Env) -> None:
    given = env.client.get("/api/v1/models", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = env.client.get("/api/v1/models", headers={"X-Request-ID": "x" * 500})
    assert made.headers["x-request-id"] not in ("", "x" * 500)
    assert env.client.get("/api/v1/models").headers["x-request-id"] != made.headers["x-request-id"]


def test_a_job_completed_before_it_started_counts_a_refund(env: Env) -> None:
    key = env.make_key()
    refunds = ("videoqueue_refunds_total", {"reason": "cancelled"})
    before = scrape(env)
    body = {"model": MODEL, "prompt": "never mind", "duration": "5s"}
    queue_id = env.post("/video/queue", body, key).json()["queue_id"]
    assert env.post("/video/complete", {"model": MODEL, "queue_id": queue_id}, key).json() == {
        "success": True
    }
    after = scrape(env)
    assert value(after, refunds[0], **refunds[1]) == value(before, refunds[0], **refunds[1]) + 1
    assert value(after, "videoqueue_jobs", state="queued", model=MODEL) == 0
