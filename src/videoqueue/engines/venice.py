"""The `venice` engine: forwards a job to a Venice-compatible server (Venice itself, or
another videoqueue) and brings its MP4 back.

Exactly once upstream: the queue call carries an `Idempotency-Key` made from our job id, so
a retry after a timeout gets the same upstream job; the upstream job is stored with ours
(`record_upstream`, its own transaction) before the first poll, so that a later attempt (a
worker that died, a restart) polls that job instead of queueing another. Once our job has
ended, however it ended, its worker (or any worker with this engine) calls `release`, which
completes the upstream job there, once.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import httpx

from videoqueue.catalog.geometry import LINES, aspect_value
from videoqueue.engines.base import (
    EngineError,
    JobCancelled,
    JobInput,
    Media,
    ProgressCallback,
    UpstreamJob,
    VideoInfo,
    record_upstream,
)
from videoqueue.engines.data_urls import data_url, media_fields
from videoqueue.engines.upstream_calls import (
    PROGRESS_BEFORE_DOWNLOAD,
    Binding,
    Ticker,
    Wait,
    answered,
    binding,
    raise_for_answer,
    retrying,
    send_release,
    write_stream,
)
from videoqueue.media.probe import probe_video

log = logging.getLogger(__name__)

STANDARD_ASPECTS = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9")
MEDIA_FORMS = ("data", "urls")
"""How media go upstream: `data:` URLs in the body, or links to this server it GETs."""


class VeniceEngine:
    """Runs each job as a job of the upstream model at `base_url`, polling it with backoff."""

    name = "venice"

    def __init__(self, binding: Binding, media: str = "data") -> None:
        if media not in MEDIA_FORMS:
            raise ValueError(f"media must be one of {', '.join(MEDIA_FORMS)}, got {media!r}")
        self.binding = binding
        self.media = media
        self.client = httpx.Client(timeout=binding.timeout_seconds)
        self._constraints: dict[str, dict[str, Any]] = {}

    def close(self) -> None:
        """Close its connections (a worker's child never needs to: it ends with them)."""
        self.client.close()

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        model = self.binding.model or job.model
        ticker = Ticker(progress)
        # 1. Start the upstream job, unless an earlier attempt did.
        upstream = job.upstream or self._queue(job, model, ticker.wait)
        try:
            if job.upstream is None:
                record_upstream(progress, upstream)
            # 2. Poll until the upstream has the video, then fetch it. Our worker releases
            # the upstream job (`release`) once our job's end is committed.
            self._await_video(model, upstream, output_path, ticker)
        except JobCancelled:
            output_path.unlink(missing_ok=True)
            raise
        return probe_video(output_path)

    def release(self, upstream: UpstreamJob, model: str) -> None:
        """`/video/complete`: the upstream cancels the job if it still runs and deletes its
        media."""
        body = {"model": self.binding.model or model, "queue_id": upstream.queue_id}
        send_release(
            lambda: self.client.post(
                f"{self.binding.base_url}/video/complete", json=body, headers=self.binding.auth
            ),
            self.binding.retry,
            "complete",
        )
        log.info("upstream job %s completed (released)", upstream.queue_id)

    def _queue(self, job: JobInput, model: str, wait: Wait) -> UpstreamJob:
        body = self._queue_body(job, model, wait)
        headers = self.binding.starting(job.job_id)

        def call() -> UpstreamJob:
            response = self.client.post(
                f"{self.binding.base_url}/video/queue", json=body, headers=headers
            )
            raise_for_answer(response, "queue")
            answer = response.json()
            download_url = answer.get("download_url")
            return UpstreamJob(str(answer["queue_id"]), download_url)

        upstream: UpstreamJob = retrying(call, self.binding.retry, wait, "queue")
        log.info("job %s queued upstream as %s (%s)", job.job_id, upstream.queue_id, model)
        return upstream

    def _queue_body(self, job: JobInput, model: str, wait: Wait) -> dict[str, Any]:
        """The queue request for `job`: each value the upstream model lists nearest to the
        job's, and only the fields it takes (from its `/models` constraints)."""
        limits = self._model_constraints(model, wait)
        body: dict[str, Any] = {"model": model}
        if job.prompt:
            body["prompt"] = job.prompt
        if job.negative_prompt:
            body["negative_prompt"] = job.negative_prompt
        durations = limits.get("durations") or [f"{round(job.duration_s)}s"]
        body["duration"] = min(durations, key=lambda d: _seconds_apart(d, job.duration_s))
        if job.upscale_factor is not None:
            body["upscale_factor"] = job.upscale_factor
        else:
            if resolutions := limits.get("resolutions"):
                body["resolution"] = min(
                    resolutions, key=lambda r: abs(LINES.get(r, 0) - job.height)
                )
            if aspects := limits.get("aspect_ratios"):
                ratio = job.width / job.height
                body["aspect_ratio"] = min(aspects, key=lambda a: _ratio_apart(a, ratio))
        if limits.get("audio_configurable"):
            body["audio"] = job.audio
        return body | media_fields(self._media_urls(job))

    def _media_urls(self, job: JobInput) -> Media[str]:
        if self.media == "data":
            return job.media.map(data_url)
        if job.media_urls is None:
            raise EngineError("media=urls, but this worker signs no links to a job's inputs")
        return job.media_urls

    def _model_constraints(self, model: str, wait: Wait) -> dict[str, Any]:
        if model not in self._constraints:

            def call() -> dict[str, dict[str, Any]]:
                response = self.client.get(
                    f"{self.binding.base_url}/models", params={"type": "video"}
                )
                raise_for_answer(response, "models")
                return {
                    m["id"]: m.get("model_spec", {}).get("constraints", {})
                    for m in response.json().get("data", [])
                }

            self._constraints = retrying(call, self.binding.retry, wait, "models")
            if model not in self._constraints:
                log.error(
                    "the upstream server at %s lists no model %s", self.binding.base_url, model
                )
                raise EngineError(f"the upstream server has no model {model}")
        return self._constraints[model]

    def _await_video(
        self,
        model: str,
        upstream: UpstreamJob,
        output_path: Path,
        ticker: Ticker,
    ) -> None:
        wait = ticker.wait
        pause = self.binding.poll_seconds
        body = {"model": model, "queue_id": upstream.queue_id}
        while True:
            status = retrying(
                lambda: self._retrieve(body, output_path), self.binding.retry, wait, "retrieve"
            )
            if status is None:
                return
            if status.get("status") == "COMPLETED" and upstream.download_url:
                retrying(
                    lambda: self._download(upstream.download_url or "", output_path),
                    self.binding.retry,
                    wait,
                    "download",
                )
                return
            ticker.report(_fraction(status))
            wait(pause)
            pause = min(pause * 1.5, self.binding.max_poll_seconds)

    def _retrieve(self, body: dict[str, str], output_path: Path) -> dict[str, Any] | None:
        """The upstream's status JSON, or None once its MP4 is written to `output_path`."""
        url = f"{self.binding.base_url}/video/retrieve"
        with answered(
            self.client, "POST", url, "retrieve", json=body, headers=self.binding.auth
        ) as r:
            if r.headers.get("content-type", "").startswith("application/json"):
                r.read()
                answer = r.json()
                return answer if isinstance(answer, dict) else {}
            write_stream(r, output_path)
        return None

    def _download(self, url: str, output_path: Path) -> None:
        # A pre-signed link takes no key (spec §8): ours must not leak to its host.
        with answered(self.client, "GET", url, "download") as response:
            write_stream(response, output_path)


def _fraction(status: dict[str, Any]) -> float:
    """The upstream's own `progress` (0 to 100) where it gives one, else its elapsed time over
    its average, held below the download."""
    given = status.get("progress")
    if isinstance(given, int | float) and not isinstance(given, bool):
        return max(0.0, min(PROGRESS_BEFORE_DOWNLOAD, given / 100))
    average = status.get("average_execution_time")
    elapsed = status.get("execution_duration")
    if isinstance(average, int | float) and isinstance(elapsed, int | float) and average > 0:
        return max(0.0, min(PROGRESS_BEFORE_DOWNLOAD, elapsed / average))
    return 0.0


def _seconds_apart(duration: str, seconds: float) -> float:
    try:
        return abs(float(duration.removesuffix("s")) - seconds)
    except ValueError:
        return math.inf


def _ratio_apart(aspect: str, ratio: float) -> float:
    value = aspect_value(aspect)
    return math.inf if value is None else abs(math.log(value / ratio))


def load(*, media: str = "data", **options: str) -> VeniceEngine:
    """The engine of a factory string
    `videoqueue.engines.venice:load?base_url=…&api_key_env=…`: its options are
    `upstream_calls.binding`'s, and `media` (`data` or `urls`, see `MEDIA_FORMS`)."""
    return VeniceEngine(binding(**options), media)
