"""`AsyncClient`: the API over an `httpx.AsyncClient`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx

from videoqueue.client.base import Call, ClientBase, video_of
from videoqueue.client.errors import WaitTimedOut
from videoqueue.client.jobs import Cancelled, JobPage, JobStatus, JobSummary, Progress, QueuedJob

T = TypeVar("T")


class AsyncClient(ClientBase[httpx.AsyncClient]):
    """A videoqueue (or any Venice-compatible) server's video API.

    >>> async with AsyncClient(api_key="vq_…") as client:
    ...     await client.generate("k.mp4", model="wan-2.5-preview-text-to-video", prompt="kite")
    """

    _http_class = httpx.AsyncClient

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _call(self, call: Call[T]) -> T:
        request = self._build(call)
        auth = httpx.USE_CLIENT_DEFAULT if call.authenticated else None
        attempt = 0
        while True:
            response = await self._http.send(
                request, auth=auth, follow_redirects=call.follow_redirects
            )
            delay = self.retry.delay(response, attempt)
            if delay is None:
                return call.parse(response)
            await response.aclose()
            await asyncio.sleep(delay)
            attempt += 1

    async def models(self, type: str = "video") -> list[dict[str, Any]]:
        """The `/models` entries (`id`, `model_spec.constraints`, …)."""
        return await self._call(self._models(type))

    async def quote(self, **request: Any) -> float:
        """The USD price of a queue request."""
        return await self._call(self._quote(request))

    async def queue(self, *, idempotency_key: str | None = None, **request: Any) -> QueuedJob:
        """Queue a job (`model`, `prompt`, `duration`, … as in Venice's `/video/queue`)."""
        return await self._call(self._queue(request, idempotency_key))

    async def retrieve(self, job: QueuedJob) -> JobStatus:
        return await self._call(self._retrieve(job))

    async def complete(self, job: QueuedJob) -> bool:
        """Delete the job's media on the server (a queued job is cancelled)."""
        return await self._call(self._complete(job))

    async def jobs(
        self,
        state: str | Sequence[str] | None = None,
        model: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobPage:
        """One page of the account's jobs, as `Client.jobs`."""
        return await self._call(self._jobs(state, model, limit, cursor))

    async def iter_jobs(
        self,
        state: str | Sequence[str] | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[JobSummary]:
        """Every job `jobs()` lists, page after page of `limit`."""
        cursor: str | None = None
        while True:
            page = await self.jobs(state, model, limit, cursor)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def job(self, queue_id: str) -> JobSummary:
        """The account's job `queue_id`, as `Client.job`."""
        return await self._call(self._job(queue_id))

    async def cancel(self, queue_id: str, model: str) -> Cancelled:
        """Cancel a queued or running job, as `Client.cancel`."""
        return await self._call(self._cancel(queue_id, model))

    async def wait(
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
            status = await self.retrieve(job)
            elapsed = time.monotonic() - started
            if on_progress is not None:
                on_progress(Progress.of(status, elapsed))
            if status.done:
                return status
            if timeout is not None and elapsed + poll_interval > timeout:
                raise WaitTimedOut(f"job {job.queue_id} not done after {elapsed:.0f} s")
            await asyncio.sleep(poll_interval)

    async def download(
        self, job: QueuedJob, path: str | Path, status: JobStatus | None = None
    ) -> Path:
        """Write the finished video to `path`, from retrieve or from the job's link."""
        video = video_of(job, status or await self.retrieve(job))
        if video is None:
            video = await self._call(self._link(job))
        target = Path(path)
        target.write_bytes(video)
        return target

    async def generate(
        self,
        path: str | Path,
        *,
        on_progress: Callable[[Progress], object] | None = None,
        poll_interval: float = 5.0,
        timeout: float | None = None,
        **request: Any,
    ) -> Path:
        """Queue, wait and download in one call."""
        job = await self.queue(**request)
        status = await self.wait(
            job, on_progress=on_progress, poll_interval=poll_interval, timeout=timeout
        )
        return await self.download(job, path, status)
