"""uvicorn's httptools protocol with ASGI's zero-copy send extension
(`http.response.zerocopysend`): a response sends a file's bytes with the kernel's
`sendfile`, from the page cache to the socket, as nginx does, instead of through Python.

uvicorn does not offer the extension; its protocol class is what `uvicorn.run(http=…)` takes,
so this one adds it around each request's ASGI call.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, BinaryIO, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from videoqueue.api.file_response import ZERO_COPY

App = Any
"""An ASGI application (uvicorn's own type for it is private)."""


class ZeroCopyHttpToolsProtocol(HttpToolsProtocol):
    """httptools' HTTP/1.1 protocol, offering `http.response.zerocopysend` in each scope."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        cast(dict[str, Any], self.scope)["extensions"] = {ZERO_COPY: {}}

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: App) -> None:
        super()._start_asgi_task(cycle, _answering_zero_copy(app, cycle, self.loop))


def _answering_zero_copy(
    app: App, cycle: RequestResponseCycle, loop: asyncio.AbstractEventLoop
) -> App:
    async def send(message: Any) -> None:
        if message["type"] == ZERO_COPY:
            await _send_file(cycle, loop, message)
        else:
            await cycle.send(message)

    async def call(scope: Any, receive: Any, _send: Any) -> None:
        await app(scope, receive, send)

    return call


async def _send_file(
    cycle: RequestResponseCycle, loop: asyncio.AbstractEventLoop, message: Any
) -> None:
    """The extension's message: `file` from `offset` (else its position) for `count` bytes
    (else to its end), then what `more_body` says, as a body message would.

    Raises `ConnectionError` if the client is gone, before or while the file goes, as ASGI
    asks of a send on a closed connection (uvicorn's own sends return quietly), so that the
    app knows its response was not delivered.
    """
    if cycle.flow.write_paused and not cycle.disconnected:
        await cycle.flow.drain()
    if cycle.disconnected or cycle.transport.is_closing():
        raise ConnectionResetError("the client closed the connection")
    if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding:
        raise RuntimeError(f"'{ZERO_COPY}' needs a started response with a Content-Length")
    file = cast(BinaryIO, message["file"])
    offset = message.get("offset")
    if offset is None:
        offset = file.tell()
    count = message.get("count")
    if count is None:
        count = os.fstat(file.fileno()).st_size - offset
    if count > cycle.expected_content_length:
        raise RuntimeError("Response content longer than Content-Length")
    if cycle.scope["method"] != "HEAD" and count:
        try:
            sent = await loop.sendfile(cycle.transport, file, offset, count)
        except ConnectionError:
            cycle.transport.close()
            raise
        if sent != count:
            cycle.transport.close()  # the promised length cannot be kept
            raise RuntimeError(f"the file ended {count - sent} bytes short of its range")
    cycle.expected_content_length -= count
    await cycle.send(
        {"type": "http.response.body", "body": b"", "more_body": message.get("more_body", False)}
    )
