"""Sending a byte range of a local file from the event loop, without a thread hop per chunk
and, where the server offers it, without Python touching the bytes."""

from __future__ import annotations

import mmap
from collections.abc import Awaitable, Callable, Mapping
from typing import BinaryIO

import anyio
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

ZERO_COPY = "http.response.zerocopysend"
"""ASGI's zero-copy send extension: a server that offers it sends a file by `sendfile`
(`serve` does, `api/zero_copy.py`)."""

CHUNK_BYTES = 1 << 20
"""Bytes per body message: 256 KiB, 1 MiB and 4 MiB cost alike per GB on uvicorn and httptools
(bench/README.md), and a larger message only holds more of the file in the transport."""


class LocalFileResponse(Response):
    """Bytes `start` … `end` (inclusive) of an open file, handed to the server by ASGI's
    zero-copy send where the server offers it (the kernel copies page cache to socket), else
    written straight from a read-only memory map of it.

    No `read()` copies the bytes and no worker thread fetches each chunk. Each mapped chunk's
    pages are dropped from the map once handed to the server, so the process's memory stays
    flat for any file size. The file must not shrink while it is sent (stored objects are
    replaced whole, never truncated).

    `on_sent` runs after the last byte was handed to the server, not after a dropped download;
    `background` runs in either case, as on any Starlette response.
    """

    def __init__(
        self,
        file: BinaryIO,
        start: int,
        end: int,
        *,
        status_code: int,
        headers: Mapping[str, str],
        media_type: str,
        background: BackgroundTask | None = None,
        on_sent: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(None, status_code, dict(headers), media_type, background)
        self.raw_headers = [
            (name, value) for name, value in self.raw_headers if name != b"content-length"
        ]
        self.raw_headers.append((b"content-length", str(end - start + 1).encode("latin-1")))
        self._file = file
        self._start, self._end = start, end
        self._on_sent = on_sent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self._file:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            sent = True
            if scope.get("method") != "HEAD" and self._end >= self._start:
                if ZERO_COPY in scope.get("extensions", {}):
                    # The server's send raises once the client is gone: no watcher needed.
                    sent = await _delivered(self._send_by_kernel(send))
                else:
                    sent = await _until_disconnect(self._send_from(self._map(), send), receive)
        if sent:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            if self._on_sent is not None:
                await self._on_sent()
        if self.background is not None:
            await self.background()

    async def _send_by_kernel(self, send: Send) -> None:
        message = {
            "type": ZERO_COPY,
            "file": self._file,
            "offset": self._start,
            "count": self._end - self._start + 1,
            "more_body": True,
        }
        await send(message)

    def _map(self) -> mmap.mmap:
        mapped = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        mapped.madvise(mmap.MADV_SEQUENTIAL)
        return mapped

    async def _send_from(self, mapped: mmap.mmap, send: Send) -> None:
        # The map is never closed here: a transport may still hold a view of the last chunks
        # (asyncio's keeps memoryviews from 3.12), and it goes with the last reference.
        view = memoryview(mapped)
        offset = self._start
        while offset <= self._end:
            stop = min(offset + CHUNK_BYTES, self._end + 1)
            await send({"type": "http.response.body", "body": view[offset:stop], "more_body": True})
            # Still valid if the transport has not written them yet: they fault back in from
            # the page cache.
            page = offset - offset % mmap.PAGESIZE
            mapped.madvise(mmap.MADV_DONTNEED, page, stop - page)
            offset = stop


async def _delivered(sending: Awaitable[None]) -> bool:
    """Await `sending`; False if the connection closed under it."""
    try:
        await sending
    except OSError:  # ASGI's answer to a send on a closed connection
        return False
    return True


async def _until_disconnect(sending: Awaitable[None], receive: Receive) -> bool:
    """Await `sending` unless the client goes first (a server whose sends do not raise once
    it has gone); True if it finished."""
    finished = False
    async with anyio.create_task_group() as group:

        async def send_all() -> None:
            nonlocal finished
            finished = await _delivered(sending)
            group.cancel_scope.cancel()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(send_all)
        group.start_soon(watch)
    return finished
