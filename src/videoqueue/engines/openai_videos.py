"""The `openai-videos` engine: forwards a job to a server of OpenAI's videos API
(`/v1/videos`: an SGLang Diffusion or vLLM-Omni server, OpenAI, another videoqueue) and
brings its MP4 back.

Exactly once upstream, as the `venice` engine: the create call carries an `Idempotency-Key`
made from our job id, and the upstream video's id is stored with our job (`record_upstream`)
before the first poll, so that a later attempt polls that video instead of creating another.
Once our job has ended, a worker with this engine deletes the upstream video (`release`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx

from videoqueue.engines.base import (
    EngineError,
    JobCancelled,
    JobInput,
    ProgressCallback,
    ProviderContentPolicy,
    UpstreamJob,
    VideoInfo,
    record_upstream,
)
from videoqueue.engines.data_urls import media_type
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

CONTENT_POLICY_CODES = frozenset(
    {"provider_content_policy", "moderation_blocked", "content_policy_violation"}
)
"""Failure codes meaning the upstream refused the content (videoqueue's, then OpenAI's)."""


class OpenAIVideosEngine:
    """Runs each job as a video of `model` at `base_url` (the part before `/videos`)."""

    name = "openai-videos"

    def __init__(self, binding: Binding) -> None:
        self.binding = binding
        self.client = httpx.Client(timeout=binding.timeout_seconds)

    def close(self) -> None:
        self.client.close()

    def generate(self, job: JobInput, output_path: Path, progress: ProgressCallback) -> VideoInfo:
        ticker = Ticker(progress)
        upstream = job.upstream or self._create(job, ticker.wait)
        video_id = upstream.queue_id
        try:
            if job.upstream is None:
                record_upstream(progress, upstream)
            # Our worker deletes the upstream video (`release`) once our job's end is
            # committed.
            self._await_video(video_id, ticker)
            retrying(
                lambda: self._download(video_id, output_path),
                self.binding.retry,
                ticker.wait,
                "content",
            )
        except JobCancelled:
            output_path.unlink(missing_ok=True)
            raise
        return probe_video(output_path)

    def release(self, upstream: UpstreamJob, model: str) -> None:
        """`DELETE /videos/{id}`: the upstream cancels the video if it still runs and deletes
        its media."""
        send_release(
            lambda: self.client.delete(
                f"{self.binding.base_url}/videos/{upstream.queue_id}", headers=self.binding.auth
            ),
            self.binding.retry,
            "delete",
        )
        log.info("upstream video %s deleted (released)", upstream.queue_id)

    def _create(self, job: JobInput, wait: Wait) -> UpstreamJob:
        fields = {
            "model": self.binding.model or job.model,
            "prompt": job.prompt,
            "size": f"{job.width}x{job.height}",
            "seconds": f"{job.duration_s:g}",
        }
        headers = self.binding.starting(job.job_id)
        image = job.media.image
        url = f"{self.binding.base_url}/videos"

        def call() -> UpstreamJob:
            if image is None:
                response = self.client.post(url, json=fields, headers=headers)
            else:
                data = image.read_bytes()
                upload = (image.name, data, media_type(data[:16]))
                response = self.client.post(
                    url, data=fields, files={"input_reference": upload}, headers=headers
                )
            raise_for_answer(response, "create")
            return UpstreamJob(str(response.json()["id"]))

        upstream: UpstreamJob = retrying(call, self.binding.retry, wait, "create")
        log.info("job %s created upstream as video %s", job.job_id, upstream.queue_id)
        return upstream

    def _await_video(self, video_id: str, ticker: Ticker) -> None:
        """Polls until the upstream video is completed; raises its failure."""
        pause = self.binding.poll_seconds
        while True:
            video = retrying(
                lambda: self._retrieve(video_id), self.binding.retry, ticker.wait, "poll"
            )
            status = video.get("status")
            if status == "completed":
                return
            if status == "failed":
                raise _failure(video.get("error"))
            ticker.report(_fraction(video.get("progress")))
            ticker.wait(pause)
            pause = min(pause * 1.5, self.binding.max_poll_seconds)

    def _retrieve(self, video_id: str) -> dict[str, Any]:
        response = self.client.get(
            f"{self.binding.base_url}/videos/{video_id}", headers=self.binding.auth
        )
        raise_for_answer(response, "poll")
        answer = response.json()
        return answer if isinstance(answer, dict) else {}

    def _download(self, video_id: str, output_path: Path) -> None:
        url = f"{self.binding.base_url}/videos/{video_id}/content"
        with answered(self.client, "GET", url, "content", headers=self.binding.auth) as response:
            write_stream(response, output_path)


def _failure(error: object) -> EngineError:
    """Our (refunded) failure for the upstream's `error` object `{code, message}`."""
    code = error.get("code") if isinstance(error, dict) else None
    message = str(error.get("message") or "") if isinstance(error, dict) else ""
    if code in CONTENT_POLICY_CODES:
        return ProviderContentPolicy(message or None)
    return EngineError(f"the upstream video failed: {message or code or 'no reason given'}")


def _fraction(progress: object) -> float:
    """The upstream's `progress` (0 to 100) as ours, held below the download."""
    if isinstance(progress, int | float) and not isinstance(progress, bool):
        return max(0.0, min(PROGRESS_BEFORE_DOWNLOAD, progress / 100))
    return 0.0


def load(**options: str) -> OpenAIVideosEngine:
    """The engine of a factory string
    `videoqueue.engines.openai_videos:load?base_url=…/v1&api_key_env=…&model=…`:
    its options are `upstream_calls.binding`'s."""
    return OpenAIVideosEngine(binding(**options))
