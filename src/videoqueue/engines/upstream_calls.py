"""Calls to an upstream video server (Venice-compatible, or OpenAI's videos API): retried
while the server is away or busy, its final answers turned into our engine errors (spec
§3.2), its video streamed to a file."""

from __future__ import annotations

import email.utils
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from videoqueue.engines.base import EngineError, ProgressCallback, ProviderContentPolicy

log = logging.getLogger(__name__)

RETRIED_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
TICK_S = 0.5
"""How often a wait checks whether the job was cancelled."""
IDEMPOTENCY_PREFIX = "videoqueue-job-"
"""With our job id, the `Idempotency-Key` of the call that starts the upstream job."""
PROGRESS_BEFORE_DOWNLOAD = 0.95
"""The most an upstream's progress fills before its video is ours."""
RELEASE_PATIENCE_S = 15.0
"""The longest one release keeps trying: it holds its worker's loop, and a release that did
not get through is sent again at the next sweep."""


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How long a call keeps trying through timeouts, refused connections, 429 and 5xx."""

    give_up_after_s: float
    """Seconds of failed tries after which the job fails (refunded)."""
    max_backoff_s: float = MAX_BACKOFF_S


Wait = Callable[[float], None]
"""Sleeps for the given seconds; may raise `JobCancelled` (the engine checks on its job)."""


class Retry(Exception):
    """An answer or a transport failure worth another try, after at least `after_s`."""

    def __init__(self, reason: str, after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after_s = after_s


def retry_after_s(response: httpx.Response) -> float | None:
    """The `Retry-After` header, in seconds or as an HTTP date; None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = moment.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def retrying(call: Callable[[], Any], policy: RetryPolicy, wait: Wait, what: str) -> Any:
    """`call()`'s result; each `Retry` (or timeout, or refused connection) is tried again
    after a doubling backoff, or the server's `Retry-After`, until the policy gives up."""
    started = time.monotonic()
    backoff = FIRST_BACKOFF_S
    while True:
        try:
            return call()
        except httpx.TransportError as exc:
            reason, after = f"{type(exc).__name__}: {exc}", None
        except Retry as exc:
            reason, after = exc.reason, exc.after_s
        left = policy.give_up_after_s - (time.monotonic() - started)
        pause = min(after if after is not None else backoff, policy.max_backoff_s)
        if pause > left:
            raise EngineError(f"the upstream server did not answer {what}: {reason}")
        log.warning("upstream %s: %s; trying again in %.1f s", what, reason, pause)
        wait(pause)
        backoff = min(backoff * 2, policy.max_backoff_s)


def send_release(call: Callable[[], httpx.Response], policy: RetryPolicy, what: str) -> None:
    """Send `call`, the request that lets go of an upstream job, by the retry rules (for at
    most `RELEASE_PATIENCE_S`) until the upstream answers 2xx, or 404 (it no longer has the
    job: released already). Any other final answer is logged at ERROR and taken as final too
    (asking again would get the same), leaving the job to the upstream's own expiry. Raises
    `EngineError` when it gives up on an upstream that is away or busy."""
    patience = min(policy.give_up_after_s, RELEASE_PATIENCE_S)
    policy = replace(policy, give_up_after_s=patience)

    def attempt() -> None:
        response = call()
        if response.status_code == 404:
            return
        try:
            raise_for_answer(response, what)
        except EngineError as exc:
            log.error("upstream %s refused for good, nothing to retry: %s", what, exc.message)

    retrying(attempt, policy, time.sleep, what)


def raise_for_answer(response: httpx.Response, what: str) -> None:
    """Nothing for a 2xx; `Retry` for an answer worth waiting out; else the engine error that
    the answer means (each refunded: the job never made a video)."""
    status = response.status_code
    if status < 300:
        return
    body = _json(response)
    if status == 500 and "credits_refunded" in body:
        raise EngineError(f"the upstream job failed: {_message(body)}")
    if status in RETRIED_STATUSES:
        raise Retry(f"{status} {_message(body)}", retry_after_s(response))
    if status == 422:
        error = body.get("error")
        if isinstance(error, dict):  # ProviderContentPolicyError, on retrieve
            recommended = error.get("recommended_model")
            raise ProviderContentPolicy(
                recommended_model=recommended if isinstance(recommended, str) else None
            )
        raise ProviderContentPolicy(_message(body) or None)
    if status == 402:
        log.error(
            "UPSTREAM CREDIT: the upstream server answered 402 to %s (%s); jobs bound to it "
            "fail and are refunded until its account is topped up",
            what,
            _message(body),
        )
        raise EngineError("the upstream provider could not take the job")
    if status == 409 and isinstance(body.get("error"), dict):
        raise EngineError(f"the upstream provider asks for consent: {_message(body)}")
    log.error("upstream %s answered %d: %s", what, status, _message(body))
    raise EngineError(f"the upstream server refused the job ({status}): {_message(body)}")


@contextmanager
def answered(
    client: httpx.Client, method: str, url: str, what: str, **options: Any
) -> Iterator[httpx.Response]:
    """A streamed response that `raise_for_answer` found to be a success."""
    with client.stream(method, url, **options) as response:
        if response.status_code >= 300:
            response.read()
        raise_for_answer(response, what)
        yield response


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"error": response.text[:500]}
    return body if isinstance(body, dict) else {}


def _message(body: dict[str, Any]) -> str:
    """Venice's message wherever its shape keeps it (`error` as text or `{message}`, plus
    `details` or a consent's `docs_url`)."""
    error = body.get("error")
    text = str(error.get("message", "")) if isinstance(error, dict) else str(error or "")
    extra = body.get("details", body.get("docs_url"))
    if isinstance(extra, str) and extra:
        text = f"{text} ({extra})" if text else extra
    return text


def write_stream(response: httpx.Response, output_path: Path) -> None:
    """The streamed body to `output_path`; nothing left there if the stream breaks."""
    try:
        with output_path.open("wb") as out:
            for chunk in response.iter_bytes():
                out.write(chunk)
    except httpx.HTTPError:
        output_path.unlink(missing_ok=True)
        raise


class Ticker:
    """Reports a job's progress, and sleeps reporting it again every `TICK_S`, so that a
    cancel (raised by the progress callback) stops a wait."""

    def __init__(self, progress: ProgressCallback) -> None:
        self.progress = progress
        self.fraction = 0.0

    def report(self, fraction: float) -> None:
        self.fraction = fraction
        self.progress(fraction)

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(TICK_S, left))
            self.progress(self.fraction)


def positive_seconds(text: str, name: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {text!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class Binding:
    """Where an upstream engine sends its jobs, with which key, and how patiently."""

    base_url: str
    api_key: str
    model: str | None
    poll_seconds: float
    max_poll_seconds: float
    retry: RetryPolicy
    timeout_seconds: float

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def starting(self, job_id: str) -> dict[str, str]:
        """The headers of the call that starts the upstream job for our job `job_id`."""
        return {**self.auth, "Idempotency-Key": f"{IDEMPOTENCY_PREFIX}{job_id}"}


def binding(
    *,
    base_url: str,
    api_key_env: str,
    model: str | None = None,
    poll_seconds: str = "5",
    max_poll_seconds: str = "30",
    retry_seconds: str = "300",
    timeout_seconds: str = "60",
) -> Binding:
    """A factory string's options (strings, as they come from its query) as a `Binding`; the
    key is read from the environment variable `api_key_env`, never written in the catalogue."""
    api_key = os.environ.get(api_key_env)
    if not api_key:
        raise ValueError(f"the environment variable {api_key_env} holds no API key")
    return Binding(
        base_url=base_url.rstrip("/"),
        api_key=api_key,
        model=model or None,
        poll_seconds=positive_seconds(poll_seconds, "poll_seconds"),
        max_poll_seconds=positive_seconds(max_poll_seconds, "max_poll_seconds"),
        retry=RetryPolicy(give_up_after_s=positive_seconds(retry_seconds, "retry_seconds")),
        timeout_seconds=positive_seconds(timeout_seconds, "timeout_seconds"),
    )
