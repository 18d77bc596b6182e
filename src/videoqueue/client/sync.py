"""`Client`: the API over a blocking `httpx.Client`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from videoqueue.client.base import Call, ClientBase, video_of
from videoqueue.client.errors import WaitTimedOut
from videoqueue.client.jobs import Cancelled, JobPage, JobStatus, JobSummary, Progress, QueuedJob

T = TypeVar("T")


class Client(ClientBase[httpx.Client]):
    """A videoqueue (or any Venice-compatible) server's video API.

    >>> with Client("http://127.0.0.1:8000/api/v1", api_key="vq_…") as client:
    ...     client.generate("kite.mp4", model="wan-2.5-preview-text-to-video", prompt="kite")
    """

    _http_class = httpx.Client

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, call: Call[T]) -> T:
        request = self._build(call)
        auth = httpx.USE_CLIENT_DEFAULT if call.authenticated else None
        attempt = 0
        while True:
            response = self._http.send(request, auth=auth, follow_redirects=call.follow_redirects)
            delay = self.retry.delay(response, attempt)
            if delay is None:
                return call.parse(response)
            response.close()
            time.sleep(delay)
            attempt += 1

    def models(self, type: str = "video") -> list[dict[str, Any]]:
        """The `/models` entries (`id`, `model_spec.constraints`, …)."""
        return self._call(self._models(type))

    def quote(self, **request: Any) -> float:
        """The USD price of a queue request."""
        return self._call(self._quote(request))

    def queue(self, *, idempotency_key: str | None = None, **request: Any) -> QueuedJob:
        """Queue a job (`model`, `prompt`, `duration`, … as in Venice's `/video/queue`)."""
        return self._call(self._queue(request, idempotency_key))

    def retrieve(self, job: QueuedJob) -> JobStatus:
        return self._call(self._retrieve(job))

    def complete(self, job: QueuedJob) -> bool:
        """Delete the job's media on the server (a queued job is cancelled)."""
        return self._call(self._complete(job))

    def jobs(
        self,
        state: str | Sequence[str] | None = None,
        model: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of the account's jobs, newest first (videoqueue's `/video/jobs`):
        `state` one or several of `queued`, `running`, `completed`, `failed`, `cancelled`,
        `processing`; `cursor` the previous page's `next_cursor`."""
        return self._call(self._jobs(state, model, limit, cursor))

    def iter_jobs(
        self,
        state: str | Sequence[str] | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> Iterator[JobSummary]:
        """Every job `jobs()` lists, page after page of `limit`."""
        cursor: str | None = None
        while True:
            page = self.jobs(state, model, limit, cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def job(self, queue_id: str) -> JobSummary:
        """The account's job `queue_id` (videoqueue's `/video/jobs/{queue_id}`); `NotFound` if
        it has no such job (or its media is gone), `NotSupported` on a server without the
        route."""
        return self._call(self._job(queue_id))

    def cancel(self, queue_id: str, model: str) -> Cancelled:
        """Cancel a queued or running job (videoqueue's `/video/cancel`); `JobEnded` if it
        has ended, `NotSupported` on a server without the route."""
        return self._call(self._cancel(queue_id, model))

    def wait(
        self,
        job: QueuedJob,
        *,
        on_progress: Callable[[Progress], object] | None = None,
        poll_interval: float = 5.0,
        timeout: float | None = None,
    ) -> JobStatus:
        """Poll until the job is done; `on_progress` hears of every poll."""
        started = time.monotonic()
        while True:
            status = self.retrieve(job)
            elapsed = time.monotonic() - started
            if on_progress is not None:
                on_progress(Progress.of(status, elapsed))
            if status.done:
                return status
            if timeout is not None and elapsed + poll_interval > timeout:
                raise WaitTimedOut(f"job {job.queue_id} not done after {elapsed:.0f} s")
            time.sleep(poll_interval)

    def download(self, job: QueuedJob, path: str | Path, status: JobStatus | None = None) -> Path:
        """Write the finished video to `path`, from retrieve or from the job's link."""
        video = video_of(job, status or self.retrieve(job))
        if video is None:
            video = self._call(self._link(job))
        target = Path(path)
        target.write_bytes(video)
        return target

    def generate(
        self,
        path: str | Path,
        *,
        on_progress: Callable[[Progress], object] | None = None,
        poll_interval: float = 5.0,
        timeout: float | None = None,
        **request: Any,
    ) -> Path:
        """Queue, wait and download in one call."""
        job = self.queue(**request)
        status = self.wait(
            job, on_progress=on_progress, poll_interval=poll_interval, timeout=timeout
        )
        return self.download(job, path, status)
