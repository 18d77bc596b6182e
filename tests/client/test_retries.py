"""Retries: a queue whose answer was lost (503 after the server took it) is sent again with the
same Idempotency-Key and charged once; 429 and 503 wait for `Retry-After`."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.accounts import balance
from tests.conftest import Env
from videoqueue.client import AsyncClient, Client, RateLimited, RetryPolicy, ServiceUnavailable

T2V = "wan-2.5-preview-text-to-video"
REQUEST = {"model": T2V, "prompt": "a kite", "duration": "5s", "resolution": "480p"}


@dataclass
class Flaky:
    """A proxy in front of the real server: the first queue is passed on and then answered
    503 (as if the answer was lost), the first retrieve is answered 429 without passing it on."""

    upstream: str
    retry_after: str = "0"
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)


@contextmanager
def flaky_proxy(flaky: Flaky) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            path = self.path.removeprefix("/api/v1")
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            flaky.seen.append((path, dict(self.headers.items())))
            first = path not in flaky.failed
            flaky.failed.add(path)
            if path == "/video/retrieve" and first:
                return self._answer(429, b'{"error": "Rate limit exceeded"}')
            forwarded = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
            }
            upstream = httpx.post(flaky.upstream + path, content=body, headers=forwarded)
            if path == "/video/queue" and first:
                return self._answer(503, b'{"error": "The model is at capacity."}')
            self._answer(upstream.status_code, upstream.content, upstream.headers["content-type"])

        def _answer(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            if status in (429, 503):
                self.send_header("Retry-After", flaky.retry_after)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_a_lost_queue_answer_is_retried_with_the_same_key_and_charged_once(
    env: Env, api_url: str
) -> None:
    account = env.make_account(balance_usd=10)
    flaky = Flaky(upstream=api_url, retry_after="1")
    with flaky_proxy(flaky) as proxy, Client(proxy, api_key=env.make_key(account)) as client:
        started = time.monotonic()
        job = client.queue(**REQUEST)
        queued = time.monotonic()
        status = client.retrieve(job)
        retrieved = time.monotonic()
    assert queued - started >= 1 and retrieved - queued >= 1  # each waited for Retry-After
    queues = [headers for path, headers in flaky.seen if path == "/video/queue"]
    assert len(queues) == 2
    assert queues[0]["Idempotency-Key"] == queues[1]["Idempotency-Key"]
    assert [path for path, _ in flaky.seen].count("/video/retrieve") == 2
    assert status.status == "PROCESSING"
    assert balance(env, account) == 10_000_000 - 250_000


def test_the_async_client_retries_as_the_client_does(env: Env, api_url: str) -> None:
    account = env.make_account(balance_usd=10)
    flaky = Flaky(upstream=api_url, retry_after="1")

    async def scenario(proxy: str) -> tuple[float, float, str]:
        async with AsyncClient(proxy, api_key=env.make_key(account)) as client:
            started = time.monotonic()
            job = await client.queue(**REQUEST)
            queued = time.monotonic()
            status = await client.retrieve(job)
            return queued - started, time.monotonic() - queued, status.status

    with flaky_proxy(flaky) as proxy:
        queue_wait, retrieve_wait, status = asyncio.run(scenario(proxy))
    assert queue_wait >= 1 and retrieve_wait >= 1
    assert status == "PROCESSING"
    queues = [headers for path, headers in flaky.seen if path == "/video/queue"]
    assert len(queues) == 2
    assert queues[0]["Idempotency-Key"] == queues[1]["Idempotency-Key"]
    assert balance(env, account) == 10_000_000 - 250_000


def test_two_queues_send_two_keys(env: Env, api_url: str) -> None:
    flaky = Flaky(upstream=api_url)
    with flaky_proxy(flaky) as proxy, Client(proxy, api_key=env.make_key()) as client:
        first, second = client.queue(**REQUEST), client.queue(**REQUEST)
    assert first.queue_id != second.queue_id
    keys = {headers["Idempotency-Key"] for path, headers in flaky.seen if path == "/video/queue"}
    assert len(keys) == 2


def test_past_its_attempts_the_client_raises_the_typed_error(env: Env, api_url: str) -> None:
    flaky = Flaky(upstream=api_url, retry_after="5")
    once = RetryPolicy(attempts=1)
    with flaky_proxy(flaky) as proxy, Client(proxy, api_key=env.make_key(), retry=once) as client:
        with pytest.raises(ServiceUnavailable) as unavailable:
            client.queue(**REQUEST)
        with pytest.raises(RateLimited) as limited:
            client.retrieve(client.queue(**REQUEST))
    assert unavailable.value.status == 503
    assert limited.value.retry_after == 5.0


def _response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers)


def test_the_policy_waits_for_retry_after_in_seconds_or_as_a_date() -> None:
    policy = RetryPolicy(attempts=3, max_delay_s=60)
    assert policy.delay(_response(503, **{"Retry-After": "7"}), 0) == 7
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    delay = policy.delay(_response(429, **{"Retry-After": later}), 0)
    assert delay is not None and 25 < delay <= 30
    assert policy.delay(_response(429, **{"Retry-After": "600"}), 0) == 60
    assert policy.delay(_response(503, **{"Retry-After": "7"}), 2) is None
    assert policy.delay(_response(500), 0) is None
    assert policy.delay(_response(402), 0) is None


def test_without_retry_after_the_policy_backs_off_exponentially() -> None:
    policy = RetryPolicy(attempts=10, backoff_s=1, max_delay_s=6)
    delays = [policy.delay(_response(503), attempt) for attempt in range(4)]
    assert all(d is not None for d in delays)
    assert 0.5 <= delays[0] <= 1 and 1 <= delays[1] <= 2 and 2 <= delays[2] <= 4  # type: ignore[operator]
    assert 3 <= delays[3] <= 6  # type: ignore[operator]
