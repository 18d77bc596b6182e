"""`Client` and `AsyncClient` against a real server: a job queued, waited for and downloaded
(a real MP4, decoded), and each refusal turned into its typed error."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import av
import pytest

from tests.conftest import Env
from tests.media_files import duration_s
from videoqueue.client import (
    AsyncClient,
    AuthenticationFailed,
    BadRequest,
    Client,
    JobNotReady,
    JobStatus,
    NotFound,
    PaymentRequired,
    Progress,
    QueuedJob,
)

T2V = "wan-2.5-preview-text-to-video"
REQUEST: dict[str, Any] = {
    "model": T2V,
    "prompt": "A red kite over dunes",
    "duration": "5s",
    "resolution": "480p",
    "aspect_ratio": "9:16",
}


def _assert_the_requested_clip(path: Path) -> None:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (270, 480)
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 120
    assert abs(duration_s(path.read_bytes()) - 5.0) < 0.1


def _assert_progress_ends_done(seen: list[Progress]) -> None:
    assert seen, "the callback was never called"
    assert all(p.fraction is None or 0 <= p.fraction <= 1 for p in seen)
    assert [p.elapsed_s for p in seen] == sorted(p.elapsed_s for p in seen)
    assert seen[-1].state == "COMPLETED"
    assert seen[-1].fraction == 1.0


def test_generate_queues_waits_and_saves_a_decodable_mp4(
    env: Env, base_url: str, tmp_path: Path
) -> None:
    seen: list[Progress] = []
    with Client(base_url, api_key=env.make_key()) as client:
        path = client.generate(
            tmp_path / "kite.mp4", on_progress=seen.append, poll_interval=0.1, **REQUEST
        )
    assert path == tmp_path / "kite.mp4"
    _assert_the_requested_clip(path)
    _assert_progress_ends_done(seen)


def test_the_async_client_lists_quotes_queues_downloads_and_completes(
    env: Env, base_url: str, tmp_path: Path
) -> None:
    async def scenario() -> tuple[list[str], float, QueuedJob, list[Progress]]:
        seen: list[Progress] = []
        async with AsyncClient(base_url, api_key=env.make_key()) as client:
            ids = [entry["id"] for entry in await client.models()]
            quote = await client.quote(**REQUEST)
            job = await client.queue(**REQUEST)
            status = await client.wait(job, on_progress=seen.append, poll_interval=0.1)
            await client.download(job, tmp_path / "kite.mp4", status)
            assert await client.complete(job) is True
            with pytest.raises(NotFound):
                await client.retrieve(job)
        return ids, quote, job, seen

    ids, quote, job, seen = asyncio.run(scenario())
    assert T2V in ids
    assert quote == 0.25
    assert job.model == T2V and uuid.UUID(job.queue_id)
    _assert_the_requested_clip(tmp_path / "kite.mp4")
    _assert_progress_ends_done(seen)


def test_download_before_the_job_is_done_is_job_not_ready(
    env: Env, api_url: str, tmp_path: Path
) -> None:
    with Client(api_url, api_key=env.make_key()) as client:
        job = client.queue(**REQUEST)
        with pytest.raises(JobNotReady) as caught:
            client.download(job, tmp_path / "early.mp4")
    assert "PROCESSING" in caught.value.message
    assert not (tmp_path / "early.mp4").exists()


def test_a_bad_key_is_authentication_failed(api_url: str) -> None:
    with (
        Client(api_url, api_key="vq_not_a_key") as client,
        pytest.raises(AuthenticationFailed) as caught,
    ):
        client.queue(**REQUEST)
    assert caught.value.status == 401
    assert caught.value.message == "Authentication failed"


def test_an_invalid_body_is_bad_request_with_the_servers_issues(env: Env, api_url: str) -> None:
    with Client(api_url, api_key=env.make_key()) as client, pytest.raises(BadRequest) as caught:
        client.queue(**{**REQUEST, "aspect_ratio": "99:1"})
    assert caught.value.status == 400
    assert caught.value.message == "Invalid request parameters"
    assert [issue["path"] for issue in caught.value.body["issues"]] == [["aspect_ratio"]]


def test_an_unknown_job_is_not_found(env: Env, api_url: str) -> None:
    job = QueuedJob(model=T2V, queue_id=str(uuid.uuid4()))
    with Client(api_url, api_key=env.make_key()) as client, pytest.raises(NotFound) as caught:
        client.retrieve(job)
    assert caught.value.status == 404
    assert caught.value.code == "MEDIA_NOT_FOUND"


def test_an_empty_balance_is_payment_required(env: Env, api_url: str) -> None:
    with (
        Client(api_url, api_key=env.make_key(balance_usd=0)) as client,
        pytest.raises(PaymentRequired) as caught,
    ):
        client.queue(**REQUEST)
    assert caught.value.status == 402
    assert caught.value.message.startswith("Insufficient USD or Diem balance")


def test_no_credentials_is_payment_required_with_the_x402_requirements(api_url: str) -> None:
    with Client(api_url, api_key="") as client, pytest.raises(PaymentRequired) as caught:
        client.queue(**REQUEST)
    assert caught.value.requirements is not None
    assert caught.value.requirements["x402Version"] == 2
    assert caught.value.body["error"] == "Authentication required"


def test_progress_reads_the_servers_fields_when_it_sends_them() -> None:
    queued = JobStatus.from_json(
        {
            "status": "PROCESSING",
            "average_execution_time": 10_000,
            "execution_duration": 0,
            "progress": 0.0,
            "queue_position": 3,
        }
    )
    seen = Progress.of(queued, elapsed_s=1.0)
    assert (seen.state, seen.queue_position, seen.fraction, seen.eta_s) == ("QUEUED", 3, 0.0, None)
    running = JobStatus.from_json(
        {
            "status": "PROCESSING",
            "average_execution_time": 10_000,
            "execution_duration": 9_000,
            "progress": 0.25,
            "queue_position": None,
        }
    )
    seen = Progress.of(running, elapsed_s=10.0)
    assert (seen.state, seen.queue_position, seen.fraction, seen.eta_s) == (
        "PROCESSING",
        None,
        0.25,
        30.0,
    )


def test_without_the_servers_progress_it_is_estimated_from_venices_times() -> None:
    venice = JobStatus.from_json(
        {"status": "PROCESSING", "average_execution_time": 145_000, "execution_duration": 29_000}
    )
    assert venice.fraction() == pytest.approx(0.2)
    overdue = JobStatus.from_json(
        {"status": "PROCESSING", "average_execution_time": 1_000, "execution_duration": 5_000}
    )
    assert overdue.fraction() == 0.99
    assert JobStatus.from_json({"status": "PROCESSING"}).fraction() is None
    assert JobStatus(status="COMPLETED", video=b"mp4").fraction() == 1.0
