"""A private model's job: retrieve answers JSON `COMPLETED`, and the client fetches the MP4 from
the `download_url` that queue gave, without sending its key there; on S3 storage with
`storage_redirect` on, the link answers 307 to a pre-signed URL of the bucket, and the client
follows it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from tests.accounts import live_server
from tests.conftest import Env
from tests.s3_server import S3Server
from tests.test_cli_serve import free_port
from videoqueue.client import Client
from videoqueue.settings import Settings

PRIVATE = "grok-imagine-text-to-video-private"


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def stored_in() -> dict[str, Any]:
    """Settings of where media is stored: the data dir."""
    return {}


@pytest.fixture
def settings(tmp_path: Path, port: int, stored_in: dict[str, Any]) -> Settings:
    """The test settings, with links pointing at the port the test serves on."""
    return Settings(
        data_dir=tmp_path / "data",
        lease_seconds=2.0,
        heartbeat_seconds=0.3,
        poll_seconds=0.05,
        public_base_url=f"http://127.0.0.1:{port}",
        **stored_in,
    )


@pytest.fixture
def api_url(env: Env, port: int) -> Iterator[str]:
    with live_server(env.client.app, port=port) as base:
        yield base


def test_a_private_job_is_downloaded_from_its_link(
    env: Env, base_url: str, port: int, tmp_path: Path
) -> None:
    request = {"model": PRIVATE, "prompt": "a kite", "duration": "2s", "resolution": "480p"}
    with Client(base_url, api_key=env.make_key()) as client:
        job = client.queue(**request, aspect_ratio="1:1")
        assert job.download_url is not None
        assert job.download_url.startswith(f"http://127.0.0.1:{port}/v1/share/read/")
        status = client.wait(job, poll_interval=0.1)
        assert status.status == "COMPLETED" and status.video is None
        path = client.download(job, tmp_path / "kite.mp4", status)
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (480, 480)
        assert sum(1 for _ in container.decode(video=0)) == 48


class TestRedirectedToTheBucket:
    @pytest.fixture
    def stored_in(self, s3_server: S3Server) -> dict[str, Any]:
        """Media in the test bucket, links redirected to it."""
        return {**s3_server.settings(), "storage_redirect": True}

    def test_the_sdk_follows_a_link_redirected_to_the_bucket(
        self, env: Env, base_url: str, tmp_path: Path
    ) -> None:
        request = {"model": PRIVATE, "prompt": "a kite", "duration": "1s", "resolution": "480p"}
        with Client(base_url, api_key=env.make_key()) as client:
            job = client.queue(**request, aspect_ratio="1:1")
            assert job.download_url is not None
            status = client.wait(job, poll_interval=0.1)
            path = client.download(job, tmp_path / "kite.mp4", status)
        with av.open(str(path)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 24
