"""Files sent by `sendfile` through uvicorn's httptools protocol with the zero-copy extension,
on a real socket: the bytes, ranges, HEAD, keep-alive and a client that drops the download."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.conftest import wait_until
from videoqueue.api.file_response import ZERO_COPY, LocalFileResponse
from videoqueue.api.zero_copy import ZeroCopyHttpToolsProtocol

SIZE = 3 * 2**20 + 17
BIG = 512 * 2**20


@dataclass
class Served:
    base_url: str
    data: bytes
    sendfiles: list[tuple[int, int]]
    """(offset, count) of each `loop.sendfile` the server made."""
    sent: list[str] = field(default_factory=list)
    """The path of each response whose last byte was handed over (its `on_sent`)."""


def _app(folder: Path, served: Served) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert ZERO_COPY in scope["extensions"]
        file = folder / ("big.mp4" if scope["path"].startswith("/big") else "video.mp4")
        query = dict(part.split("=") for part in scope["query_string"].decode().split("&") if part)
        start, end = int(query.get("start", 0)), int(query.get("end", file.stat().st_size - 1))

        async def on_sent() -> None:
            served.sent.append(scope["path"])

        response = LocalFileResponse(
            file.open("rb"),
            start,
            end,
            status_code=200,
            headers={},
            media_type="video/mp4",
            on_sent=on_sent,
        )
        await response(scope, receive, send)

    return app


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    data = os.urandom(SIZE)
    (tmp_path / "video.mp4").write_bytes(data)
    with (tmp_path / "big.mp4").open("wb") as big:  # sparse: more than any socket buffers hold
        big.truncate(BIG)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    served = Served(f"http://127.0.0.1:{port}", data, [])
    sendfile = asyncio.BaseEventLoop.sendfile

    async def recorded(self: Any, transport: Any, file: Any, offset: int, count: int) -> int:
        served.sendfiles.append((offset, count))
        return await sendfile(self, transport, file, offset, count)

    monkeypatch.setattr(asyncio.BaseEventLoop, "sendfile", recorded)
    config = uvicorn.Config(
        _app(tmp_path, served),
        host="127.0.0.1",
        port=port,
        http=ZeroCopyHttpToolsProtocol,
        loop="asyncio",
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=30)
    yield served
    server.should_exit = True
    thread.join(timeout=30)


def test_the_whole_file_goes_by_sendfile(served: Served) -> None:
    answer = httpx.get(f"{served.base_url}/whole", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["content-length"] == str(SIZE)
    assert answer.content == served.data
    assert served.sendfiles == [(0, SIZE)]
    wait_until(lambda: served.sent == ["/whole"])  # on_sent runs once the body is handed over


def test_a_range_sends_exactly_its_bytes(served: Served) -> None:
    answer = httpx.get(f"{served.base_url}/part?start=1000&end=2000999", timeout=30)
    assert answer.headers["content-length"] == "2000000"
    assert answer.content == served.data[1000:2001000]
    assert served.sendfiles == [(1000, 2000000)]


def test_head_sends_the_length_and_no_bytes(served: Served) -> None:
    answer = httpx.head(f"{served.base_url}/head", timeout=30)
    assert answer.headers["content-length"] == str(SIZE)
    assert answer.content == b""
    assert served.sendfiles == []


def test_one_connection_serves_request_after_request(served: Served) -> None:
    with httpx.Client(timeout=30) as client:
        for start in (0, 5, SIZE - 1):
            answer = client.get(f"{served.base_url}/again?start={start}")
            assert answer.content == served.data[start:]
        assert answer.headers.get("connection") != "close"
    assert [offset for offset, _ in served.sendfiles] == [0, 5, SIZE - 1]


def test_a_dropped_download_is_not_taken_as_sent_and_the_server_goes_on(served: Served) -> None:
    host, port = served.base_url.removeprefix("http://").split(":")
    with socket.socket() as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
        client.settimeout(30)
        client.connect((host, int(port)))
        client.sendall(b"GET /big-dropped HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.recv(4096).startswith(b"HTTP/1.1 200")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    time.sleep(1.0)  # the server finds the connection gone

    answer = httpx.get(f"{served.base_url}/after", timeout=30)
    assert answer.content == served.data
    wait_until(lambda: served.sent == ["/after"])
