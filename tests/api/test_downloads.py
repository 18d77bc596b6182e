"""Serving a finished MP4 from the local media dir: the exact bytes whole and by `Range`, HEAD,
and the proxy offload headers (`file_offload`), which come only after every check passed.

The jobs are finished by hand (state and stored file), so no worker runs."""

from __future__ import annotations

import asyncio
import os
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from starlette.responses import StreamingResponse
from starlette.types import Message

from tests.conftest import Env, build_env
from videoqueue.api.file_response import CHUNK_BYTES, LocalFileResponse
from videoqueue.api.mp4 import mp4_response
from videoqueue.clock import ManualClock
from videoqueue.jobs.models import Job
from videoqueue.jobs.states import JobState
from videoqueue.settings import Settings
from videoqueue.storage.layout import output_key
from videoqueue.storage.local import LocalStorage

NORMAL = "wan-2.5-preview-text-to-video"
PRIVATE = "grok-imagine-text-to-video-private"
SIZE = 2 * CHUNK_BYTES + 4321  # three chunks, the last one short and not page aligned
DATA = os.urandom(SIZE)


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    overrides: dict[str, Any] = dict(getattr(request, "param", {}))
    return Settings(data_dir=tmp_path / "data", download_link_burst=100, **overrides)


@pytest.fixture
def env(settings: Settings, clock: ManualClock) -> Iterator[Env]:
    yield from build_env(settings, clock)


def _finished(env: Env, key: str, model: str = NORMAL) -> dict[str, Any]:
    """A job of `model` queued by `key`, finished by hand with `DATA` as its MP4."""
    body = {"model": model, "prompt": "a kite", "duration": "5s", "resolution": "480p"}
    if model == PRIVATE:
        body.update(duration="1s", aspect_ratio="1:1")
    queued = env.post("/video/queue", body, key)
    assert queued.status_code == 200, queued.text
    job_id = queued.json()["queue_id"]
    LocalStorage(env.settings.data_dir / "media").put_bytes(output_key(job_id), DATA)
    with env.db.transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.state, job.output_key = JobState.COMPLETED, output_key(job_id)
    return dict(queued.json())


def _retrieve(env: Env, key: str, queue_id: str, **headers: str) -> Any:
    return env.post("/video/retrieve", {"model": NORMAL, "queue_id": queue_id}, key, headers)


@pytest.fixture
def job(env: Env) -> tuple[str, str]:
    key = env.make_key()
    return key, _finished(env, key)["queue_id"]


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-", 0, SIZE - 1),
        ("bytes=100-199", 100, 199),
        (f"bytes={CHUNK_BYTES - 1}-{CHUNK_BYTES}", CHUNK_BYTES - 1, CHUNK_BYTES),
        ("bytes=4095-4096", 4095, 4096),
        ("bytes=-1", SIZE - 1, SIZE - 1),
        ("bytes=-5000", SIZE - 5000, SIZE - 1),
        (f"bytes=-{SIZE * 2}", 0, SIZE - 1),
        ("bytes=7-99999999999", 7, SIZE - 1),
        (f"bytes={SIZE - 1}-", SIZE - 1, SIZE - 1),
        ("BYTES=10-20", 10, 20),
    ],
)
def test_retrieve_sends_exactly_the_range_asked_for(
    env: Env, job: tuple[str, str], header: str, start: int, end: int
) -> None:
    response = _retrieve(env, *job, Range=header)
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["content-type"] == "video/mp4"
    assert response.content == DATA[start : end + 1]


@pytest.mark.parametrize("header", [None, "bytes=0-1,5-6", "items=0-1", "bytes=abc", "bytes=-"])
def test_retrieve_sends_the_whole_file_without_a_usable_range(
    env: Env, job: tuple[str, str], header: str | None
) -> None:
    response = _retrieve(env, *job, **({"Range": header} if header else {}))
    assert response.status_code == 200
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.content == DATA


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", f"bytes={SIZE + 9}-{SIZE + 20}", "bytes=-0"])
def test_a_range_past_the_end_is_416_with_the_size(
    env: Env, job: tuple[str, str], header: str
) -> None:
    response = _retrieve(env, *job, Range=header)
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"
    assert response.json() == {"error": "Requested range not satisfiable"}


def test_openai_content_sends_the_same_bytes(env: Env, job: tuple[str, str]) -> None:
    key, queue_id = job
    auth = {"Authorization": f"Bearer {key}"}
    whole = env.client.get(f"/v1/videos/{queue_id}/content", headers=auth)
    assert whole.status_code == 200 and whole.content == DATA
    part = env.client.get(f"/v1/videos/{queue_id}/content", headers={**auth, "Range": "bytes=-10"})
    assert part.status_code == 206 and part.content == DATA[-10:]


def test_a_download_link_sends_the_bytes_and_head_its_size(env: Env) -> None:
    path = urlparse(_finished(env, env.make_key(), PRIVATE)["download_url"]).path
    head = env.client.head(path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(SIZE)
    part = env.client.get(path, headers={"Range": f"bytes={SIZE - 300}-"})
    assert part.status_code == 206 and part.content == DATA[-300:]
    whole = env.client.get(path)
    assert whole.status_code == 200 and whole.content == DATA
    assert whole.headers["content-disposition"].startswith("attachment;")
    assert whole.headers["cache-control"] == "private, no-store"


ACCEL = {"file_offload": "x-accel-redirect", "file_offload_prefix": "/internal/media/"}
SENDFILE = {"file_offload": "x-sendfile", "download_link_max_fetches": 2}


@pytest.mark.parametrize("settings", [ACCEL], indirect=True)
def test_x_accel_redirect_hands_the_file_to_nginx(env: Env, job: tuple[str, str]) -> None:
    key, queue_id = job
    response = _retrieve(env, key, queue_id, Range="bytes=0-9")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["x-accel-redirect"] == f"/internal/media/jobs/{queue_id}/output.mp4"
    assert response.headers["content-type"] == "video/mp4"
    stranger = env.make_key()
    refused = _retrieve(env, stranger, queue_id)
    assert refused.status_code == 404 and "x-accel-redirect" not in refused.headers


@pytest.mark.parametrize("settings", [SENDFILE], indirect=True)
def test_x_sendfile_names_the_file_after_the_link_checks(env: Env) -> None:
    path = urlparse(_finished(env, env.make_key(), PRIVATE)["download_url"]).path
    for _ in range(2):
        response = env.client.get(path)
        assert response.status_code == 200 and response.content == b""
        assert Path(response.headers["x-sendfile"]).read_bytes() == DATA
        assert response.headers["content-disposition"].startswith("attachment;")
        assert response.headers["cache-control"] == "private, no-store"
    used_up = env.client.get(path)
    assert used_up.status_code == 410 and used_up.json()["code"] == "LINK_USED_UP"
    assert "x-sendfile" not in used_up.headers

    revoked_path = urlparse(_finished(env, env.make_key(), PRIVATE)["download_url"]).path
    assert env.client.delete(revoked_path).status_code == 200
    revoked = env.client.get(revoked_path)
    assert revoked.status_code == 410 and revoked.json()["code"] == "LINK_REVOKED"
    assert "x-sendfile" not in revoked.headers


@pytest.mark.parametrize("settings", [ACCEL], indirect=True)
def test_media_deleted_after_the_download_is_sent_by_us_not_the_proxy(
    env: Env, job: tuple[str, str]
) -> None:
    key, queue_id = job
    body = {"model": NORMAL, "queue_id": queue_id, "delete_media_on_completion": True}
    response = env.post("/video/retrieve", body, key)
    assert response.status_code == 200 and response.content == DATA
    assert "x-accel-redirect" not in response.headers
    assert _retrieve(env, key, queue_id).status_code == 404


def _rss_bytes() -> int:
    status = Path("/proc/self/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def test_a_big_file_is_sent_in_chunks_without_growing_memory(tmp_path: Path) -> None:
    big = tmp_path / "big.mp4"
    with big.open("wb") as out:  # sparse: the page cache fills it with zeros as it is read
        out.truncate(256 * CHUNK_BYTES)
    sizes: list[int] = []
    crc = 0
    rss = [_rss_bytes()]

    async def receive() -> Message:
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError

    async def send(message: Message) -> None:
        nonlocal crc
        if message["type"] == "http.response.body" and message["body"]:
            sizes.append(len(message["body"]))
            crc = zlib.crc32(message["body"], crc)
            rss.append(_rss_bytes())

    size = big.stat().st_size
    response = LocalFileResponse(
        big.open("rb"), 0, size - 1, status_code=200, headers={}, media_type="video/mp4"
    )
    asyncio.run(response({"type": "http", "method": "GET"}, receive, send))
    assert sum(sizes) == size and max(sizes) == CHUNK_BYTES
    zeros, expected = bytes(CHUNK_BYTES), 0
    for _ in sizes:
        expected = zlib.crc32(zeros, expected)
    assert crc == expected
    assert max(rss) - rss[0] < 16 * CHUNK_BYTES


def test_a_dropped_download_stops_sending_and_is_not_taken_as_sent(tmp_path: Path) -> None:
    video = tmp_path / "video.mp4"
    video.write_bytes(bytes(8 * CHUNK_BYTES))

    async def download() -> tuple[int, list[str]]:
        dropped = asyncio.Event()
        chunks, ends = 0, []

        async def receive() -> Message:
            await dropped.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal chunks
            if message["type"] == "http.response.body" and message["body"]:
                chunks += 1
                if chunks == 2:
                    dropped.set()  # the client goes after two chunks
                await asyncio.sleep(0)
            elif message["type"] == "http.response.body":
                ends.append("last message")

        async def on_sent() -> None:
            ends.append("on_sent")

        response = LocalFileResponse(
            video.open("rb"),
            0,
            8 * CHUNK_BYTES - 1,
            status_code=200,
            headers={},
            media_type="video/mp4",
            on_sent=on_sent,
        )
        await response({"type": "http", "method": "GET"}, receive, send)
        return chunks, ends

    chunks, ends = asyncio.run(download())
    assert 2 <= chunks < 8
    assert ends == []


def test_a_store_without_local_files_is_asked_off_the_event_loop(tmp_path: Path) -> None:
    # As S3 is: each size and read is a network round trip, which must not stall the loop.
    asked_on: list[int] = []

    class Remote(LocalStorage):
        def local_path(self, key: str) -> Path | None:
            return None

        def size(self, key: str) -> int:
            asked_on.append(threading.get_ident())
            return super().size(key)

        def read_range(
            self, key: str, start: int, end: int, chunk_size: int = 1 << 20
        ) -> Iterator[bytes]:
            asked_on.append(threading.get_ident())
            return super().read_range(key, start, end, chunk_size)

    storage = Remote(tmp_path)
    storage.put_bytes("video.mp4", DATA)

    async def answer() -> tuple[int, dict[str, str], bytes, int]:
        response = await mp4_response(storage, "video.mp4", "bytes=10-19")
        assert isinstance(response, StreamingResponse)
        body = b"".join(
            [chunk async for chunk in response.body_iterator if isinstance(chunk, bytes)]
        )
        return response.status_code, dict(response.headers), body, threading.get_ident()

    status, headers, body, loop_thread = asyncio.run(answer())
    assert status == 206 and headers["content-range"] == f"bytes 10-19/{SIZE}"
    assert body == DATA[10:20]
    assert len(asked_on) == 2 and loop_thread not in asked_on
