"""What `Client` and `AsyncClient` share: configuration, the requests each call makes, how an
answer is read, and when a request is sent again. Only the sending differs between them."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from videoqueue.client.errors import (
    JobEnded,
    JobNotReady,
    NotSupported,
    error_for,
    retry_after_seconds,
)
from videoqueue.client.jobs import Cancelled, JobPage, JobStatus, JobSummary, QueuedJob

T = TypeVar("T")
H = TypeVar("H", httpx.Client, httpx.AsyncClient)

DEFAULT_BASE_URL = "http://127.0.0.1:8000/api/v1"
IDEMPOTENCY_HEADER = "Idempotency-Key"
JOB_NOT_FOUND = "MEDIA_NOT_FOUND"
"""The code of retrieve's (and cancel's, and `/video/jobs/{queue_id}`'s) 404 for a job: any
other 404 is a route the server lacks."""


class KeyAuth(httpx.Auth):
    """`Authorization: Bearer <key>` (an auth flow, so that links on other hosts never get it)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.key}"
        yield request


@dataclass(frozen=True)
class RetryPolicy:
    """Send again after 429 and 503, up to `attempts` sends in all: after the server's
    `Retry-After` when it gives one, else after an exponential backoff with jitter."""

    attempts: int = 5
    backoff_s: float = 0.5
    max_delay_s: float = 60.0
    statuses: frozenset[int] = frozenset({429, 503})

    def delay(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before sending again after `attempt` (0 = the first send) got
        `response`; None to give the response to the caller."""
        if response.status_code not in self.statuses or attempt + 1 >= self.attempts:
            return None
        retry_after = retry_after_seconds(response)
        if retry_after is not None:
            return min(retry_after, self.max_delay_s)
        backoff: float = self.backoff_s * 2**attempt
        return min(backoff * random.uniform(0.5, 1.0), self.max_delay_s)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request of the API and how its answer is read."""

    method: str
    url: str
    parse: Callable[[httpx.Response], T]
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    authenticated: bool = True
    """False for pre-signed links, which must not get the caller's credentials."""
    follow_redirects: bool = False
    """True for download links, which a server may redirect to its object store."""


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise error_for(response)
    return response


def _json(response: httpx.Response) -> Any:
    return _checked(response).json()


def _read_models(response: httpx.Response) -> list[dict[str, Any]]:
    return list(_json(response)["data"])


def _read_quote(response: httpx.Response) -> float:
    return float(_json(response)["quote"])


def _read_queued(response: httpx.Response) -> QueuedJob:
    body = _json(response)
    return QueuedJob(
        model=str(body["model"]),
        queue_id=str(body["queue_id"]),
        download_url=body.get("download_url"),
    )


def _read_status(response: httpx.Response) -> JobStatus:
    """JSON while the job runs (or when it is done and fetched from its link), the MP4 bytes
    once it is done: Venice says to tell them apart by the content type."""
    _checked(response)
    if response.headers.get("content-type", "").startswith("application/json"):
        return JobStatus.from_json(response.json())
    return JobStatus(status="COMPLETED", video=response.content)


def _read_success(response: httpx.Response) -> bool:
    return bool(_json(response).get("success"))


def _read_link(response: httpx.Response) -> bytes:
    return _checked(response).content


def _read_page(response: httpx.Response) -> JobPage:
    body = _json(response)
    return JobPage(
        items=tuple(JobSummary.from_json(item) for item in body["data"]),
        next_cursor=body.get("next_after") if body.get("has_more") else None,
    )


def _read_summary(response: httpx.Response) -> JobSummary:
    return JobSummary.from_json(_json(response))


def _videoqueue_only(
    feature: str, parse: Callable[[httpx.Response], T]
) -> Callable[[httpx.Response], T]:
    """`parse`, except that a 405, or a 404 that is not about a job, means the server lacks
    the route (Venice has none of videoqueue's own)."""

    def read(response: httpx.Response) -> T:
        if response.status_code in (404, 405):
            error = error_for(response)
            if error.code != JOB_NOT_FOUND:
                raise NotSupported(
                    f"this server does not support {feature} "
                    f"({response.request.method} {response.request.url.path} answered "
                    f"{response.status_code}); videoqueue does",
                    status=response.status_code,
                    code=error.code,
                    body=error.body,
                )
        return parse(response)

    return read


def _read_cancel(model: str, queue_id: str) -> Callable[[httpx.Response], Cancelled]:
    def read(response: httpx.Response) -> Cancelled:
        if response.status_code == 409:
            error = error_for(response)
            raise JobEnded(error.message, status=409, code=error.code, body=error.body)
        _json(response)
        return Cancelled(model=model, queue_id=queue_id)

    return read


class ClientBase(Generic[H]):
    """Configuration and the calls of the API; subclasses send them through `_http`."""

    _http_class: type[H]

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        auth: httpx.Auth | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
    ) -> None:
        """`base_url` and `api_key` default to `VIDEOQUEUE_BASE_URL` (else a local server)
        and `VIDEOQUEUE_API_KEY`; `auth` (e.g. a `WalletAuth`) replaces the key."""
        self.base_url = base_url or os.environ.get("VIDEOQUEUE_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = self.base_url.rstrip("/")
        key = api_key or os.environ.get("VIDEOQUEUE_API_KEY")
        self.auth: httpx.Auth | None = auth if auth is not None else (KeyAuth(key) if key else None)
        self.retry = retry or RetryPolicy()
        self._http: H = self._http_class(
            base_url=self.base_url + "/", auth=self.auth, timeout=timeout
        )

    def _models(self, kind: str) -> Call[list[dict[str, Any]]]:
        return Call("GET", f"models?type={kind}", _read_models)

    def _quote(self, request: dict[str, Any]) -> Call[float]:
        return Call("POST", "video/quote", _read_quote, body=request)

    def _queue(self, request: dict[str, Any], idempotency_key: str | None) -> Call[QueuedJob]:
        # One key per queued job, sent again unchanged on every retry: the server then answers
        # the first attempt's job and charges it once.
        key = idempotency_key or str(uuid.uuid4())
        return Call(
            "POST", "video/queue", _read_queued, body=request, headers={IDEMPOTENCY_HEADER: key}
        )

    def _retrieve(self, job: QueuedJob) -> Call[JobStatus]:
        return Call(
            "POST", "video/retrieve", _read_status, {"model": job.model, "queue_id": job.queue_id}
        )

    def _complete(self, job: QueuedJob) -> Call[bool]:
        return Call(
            "POST", "video/complete", _read_success, {"model": job.model, "queue_id": job.queue_id}
        )

    def _jobs(
        self,
        state: str | Sequence[str] | None,
        model: str | None,
        limit: int | None,
        cursor: str | None,
    ) -> Call[JobPage]:
        params: dict[str, str] = {}
        if state is not None:
            params["state"] = state if isinstance(state, str) else ",".join(state)
        if model is not None:
            params["model"] = model
        if limit is not None:
            params["limit"] = str(limit)
        if cursor is not None:
            params["after"] = cursor
        parse = _videoqueue_only("listing jobs", _read_page)
        return Call("GET", "video/jobs", parse, params=params)

    def _job(self, queue_id: str) -> Call[JobSummary]:
        # Quoted whole (dots too, or `..` would be a dot-segment), so that no id names another
        # path; a lone surrogate goes as its UTF-8-style bytes, for the server to find no job.
        path = quote(queue_id, safe="", errors="surrogatepass").replace(".", "%2E")
        parse = _videoqueue_only("reading a job", _read_summary)
        return Call("GET", f"video/jobs/{path}", parse)

    def _cancel(self, queue_id: str, model: str) -> Call[Cancelled]:
        parse = _videoqueue_only("cancelling jobs", _read_cancel(model, queue_id))
        return Call("POST", "video/cancel", parse, {"model": model, "queue_id": queue_id})

    def _link(self, job: QueuedJob) -> Call[bytes]:
        assert job.download_url is not None
        return Call("GET", job.download_url, _read_link, authenticated=False, follow_redirects=True)

    def _build(self, call: Call[Any]) -> httpx.Request:
        return self._http.build_request(
            call.method, call.url, json=call.body, headers=call.headers, params=call.params or None
        )


def video_of(job: QueuedJob, status: JobStatus) -> bytes | None:
    """The MP4 bytes `status` carries; None if they are at the job's link instead."""
    if status.video is not None:
        return status.video
    if not status.done:
        raise JobNotReady(f"job {job.queue_id} is still {status.status}")
    if job.download_url is None:
        raise JobNotReady(f"job {job.queue_id} is done but sent no video and has no link")
    return None
