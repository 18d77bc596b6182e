"""A private job on S3 storage with `storage_redirect` on: the link answers 307 to a pre-signed
URL of the bucket, and the SDK follows it to the MP4, without sending its key there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
def settings(tmp_path: Path, port: int, s3_server: S3Server) -> Settings:
    """Links at the port the test serves on, media in the bucket, links redirected to it."""
    return Settings(
        data_dir=tmp_path / "data",
        lease_seconds=2.0,
        heartbeat_seconds=0.3,
        poll_seconds=0.05,
        public_base_url=f"http://127.0.0.1:{port}",
        storage_redirect=True,
        **s3_server.settings(),
    )


@pytest.fixture
def api_url(env: Env, port: int) -> Iterator[str]:
    with live_server(env.client.app, port=port) as base:
        yield base


def test_the_sdk_follows_a_link_redirected_to_the_bucket(
    env: Env, base_url: str, tmp_path: Path
) -> None:
    request = {"model": PRIVATE, "prompt": "a kite", "duration": "1s", "resolution": "480p"}
    with Client(base_url, api_key=env.make_key()) as client:
        job = client.queue(**request, aspect_ratio="1:1")
        assert job.download_url is not None
        status = client.wait(job, poll_interval=0.1)
        path = client.download(job, tmp_path / "kite.mp4", status)
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
