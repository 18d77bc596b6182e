"""The `openai-videos` engine against a second videoqueue's `/v1/videos` on 127.0.0.1: a
real HTTP hop, real MP4s from the upstream's preview engine behind a gate, and our worker
killed outright. In every case one of our jobs makes one upstream video, and both ledgers
verify."""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import wait_until
from tests.engines.videoqueue_servers import (
    BALANCE_MICROS,
    RELAY_MODEL,
    Relay,
    VideoqueueServer,
    assert_a_job_killed_on_each_attempt_is_refunded_and_released,
    assert_mp4_of_the_request,
    held_upstream,
    relay_through,
)
from videoqueue.engines.base import JobKind
from videoqueue.engines.openai_videos import load
from videoqueue.engines.registry import capabilities
from videoqueue.jobs.states import JobState

MODEL = RELAY_MODEL
IMAGE_MODEL = "relay-i2v"
PRICE_MICROS = 10_000  # 1 s at 256p, $0.01 a second
DELETE = "DELETE /v1/videos/{video_id}"
REQUESTS = ("POST /v1/videos", DELETE)

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def catalog(engine: str) -> str:
    """A text and an image model, each 1 s at 256p, 1:1, on `engine`."""
    return "".join(
        f"""
[models."{model}"]
name = "Relay"
created = 1767225600
engine = "{engine}"
requires = {requires}
price = {{ rule = "per_second", rates = {{ "256p" = 0.01 }} }}

[models."{model}".constraints]
model_type = "{kind}"
durations = ["1s"]
resolutions = ["256p"]
aspect_ratios = ["1:1"]
audio = false
audio_configurable = false
"""
        for model, kind, requires in (
            (MODEL, "text-to-video", "[]"),
            (IMAGE_MODEL, "image-to-video", '["image_url"]'),
        )
    )


def png() -> str:
    """A 64x64 PNG as a data URL."""
    import base64

    import numpy as np
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 120, dtype=np.uint8)).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    return tmp_path / "gate"


@pytest.fixture
def upstream(tmp_path: Path, gate: Path) -> Iterator[VideoqueueServer]:
    server = held_upstream(tmp_path / "upstream", catalog("gated"), gate)
    try:
        server.start()
        yield server
    finally:
        server.kill()


@contextmanager
def relaying(
    tmp_path: Path, upstream: VideoqueueServer, gate: Path, **environment: str
) -> Iterator[Relay]:
    """Our server, forwarding to `upstream`'s `/v1/videos`, its settings changed by
    `environment`."""
    base = upstream.base_url.removesuffix("/api/v1") + "/v1"
    factory = (
        f"videoqueue.engines.openai_videos:load?base_url={quote(base)}"
        "&api_key_env=UPSTREAM_VIDEOQUEUE_KEY&poll_seconds=0.2&max_poll_seconds=0.5"
        "&retry_seconds=120"
    )
    with relay_through(
        tmp_path / "ours", catalog("upstream"), factory, upstream, gate, REQUESTS, environment
    ) as r:
        yield r


@pytest.fixture
def relay(tmp_path: Path, upstream: VideoqueueServer, gate: Path) -> Iterator[Relay]:
    with relaying(tmp_path, upstream, gate) as relay:
        yield relay


def test_a_job_runs_as_an_upstream_video_and_its_mp4_comes_back(relay: Relay) -> None:
    relay.gate.touch()
    job_id = relay.queue("a lighthouse at dusk")

    job = relay.finished(job_id)

    assert job.state == JobState.COMPLETED, job.failure
    assert_mp4_of_the_request(relay.retrieve(job_id).content)
    relay.assert_one_upstream_job_and_books_balanced(job)
    (upstream_job,) = relay.upstream.jobs()
    assert upstream_job.state == JobState.DELETED  # our engine deleted it upstream
    assert relay.ours.balance_micros() == BALANCE_MICROS - PRICE_MICROS
    assert relay.upstream.balance_micros() == BALANCE_MICROS - PRICE_MICROS


def test_an_image_job_sends_its_image_as_an_input_reference_upload(relay: Relay) -> None:
    relay.gate.touch()
    job_id = relay.queue("a lighthouse at dusk", IMAGE_MODEL, image_url=png())

    job = relay.finished(job_id)

    assert job.state == JobState.COMPLETED, job.failure
    assert_mp4_of_the_request(relay.retrieve(job_id, IMAGE_MODEL).content)
    relay.assert_one_upstream_job_and_books_balanced(job)
    (upstream_job,) = relay.upstream.jobs()
    assert upstream_job.model == IMAGE_MODEL
    # Inputs are stored under their content's hash: the upstream holds the very image.
    ours, theirs = job.spec["media"]["image"], upstream_job.spec["media"]["image"]
    assert ours is not None and Path(theirs).name == Path(ours).name


def test_an_upstream_content_policy_failure_is_ours_and_refunded_on_both_sides(
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
    relay.assert_one_upstream_job_and_books_balanced(job)
    assert relay.ours.balance_micros() == BALANCE_MICROS
    assert relay.upstream.balance_micros() == BALANCE_MICROS


def test_our_worker_killed_while_polling_resumes_the_same_upstream_video(relay: Relay) -> None:
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


def test_a_job_cancelled_while_it_runs_upstream_is_deleted_there(relay: Relay) -> None:
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

    def deletions() -> list[str]:
        # The upstream logs a request after answering it, so after its job has ended.
        return [
            line
            for line in relay.upstream.log.read_text().splitlines()
            if "videoqueue.api.requests DELETE /v1/videos/{video_id} 200 " in line
        ]

    (deletion,) = wait_until(deletions, timeout=30)
    assert f"job_id={running.upstream_queue_id}" in deletion
    assert relay.ours.ledger_consistent() and relay.upstream.ledger_consistent()


def test_a_job_whose_every_attempt_is_killed_is_refunded_and_deleted_upstream(
    tmp_path: Path, upstream: VideoqueueServer, gate: Path
) -> None:
    with relaying(tmp_path, upstream, gate, VIDEOQUEUE_MAX_ATTEMPTS="2") as relay:
        assert_a_job_killed_on_each_attempt_is_refunded_and_released(relay, attempts=2)


def test_an_engine_without_its_key_in_the_environment_does_not_set_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(ValueError, match="NO_SUCH_KEY holds no API key"):
        load(base_url="http://127.0.0.1:9/v1", api_key_env="NO_SUCH_KEY")


def test_the_engine_declares_text_and_image_jobs_without_sound() -> None:
    declared = capabilities(
        "fleet", "videoqueue.engines.openai_videos:load?base_url=http://h/v1&api_key_env=K"
    )
    assert declared.kinds == {JobKind.TEXT, JobKind.IMAGE}
    assert declared.audio is False
