"""Answering with a stored MP4: whole, or the byte range asked for; sent by us, or by the
reverse proxy in front (`file_offload`)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal
from urllib.parse import quote

from starlette.background import BackgroundTask
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import RedirectResponse, Response, StreamingResponse

from videoqueue.api.file_response import LocalFileResponse
from videoqueue.errors import VideoqueueError
from videoqueue.storage.base import ObjectNotFound, Storage

if TYPE_CHECKING:
    from videoqueue.api.context import AppContext  # which holds a `FileOffload` of here

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$", re.IGNORECASE)

OffloadMode = Literal["none", "x-accel-redirect", "x-sendfile"]
Sent = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class FileOffload:
    """Whether a reverse proxy sends local files: `x-accel-redirect` names the file as
    `prefix` + its key (an nginx `internal` location), `x-sendfile` by its absolute path."""

    mode: OffloadMode = "none"
    prefix: str = "/_videoqueue/media/"

    def header(self, key: str, path: Path) -> tuple[str, str] | None:
        """The header that hands the file at `key` to the proxy; None to send it ourselves."""
        if self.mode == "x-accel-redirect":
            return "X-Accel-Redirect", self.prefix + quote(key)
        if self.mode == "x-sendfile":
            return "X-Sendfile", str(path)
        return None


class RangeNotSatisfiable(VideoqueueError):
    """Requested range not satisfiable"""

    status = 416

    def __init__(self, size: int, headers: Mapping[str, str]) -> None:
        super().__init__()
        self._headers = {**headers, "Content-Range": f"bytes */{size}"}

    def headers(self) -> dict[str, str]:
        return dict(self._headers)


def _range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """(start, end) inclusive; None for the whole file; "unsatisfiable" for a bad range."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or not (match[1] or match[2]):
        return None  # a malformed or multi-range header: send the whole file (RFC 9110)
    if match[1]:
        start = int(match[1])
        end = min(int(match[2]), size - 1) if match[2] else size - 1
    else:
        start, end = max(0, size - int(match[2])), size - 1
    if start >= size or start > end:
        return "unsatisfiable"
    return start, end


async def mp4_response(
    storage: Storage,
    key: str,
    range_header: str | None,
    background: BackgroundTask | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    offload: FileOffload | None = None,
    on_sent: Sent | None = None,
    media_type: str = "video/mp4",
) -> Response:
    """The bytes of `key` (as `media_type`, an MP4 unless told), honouring `Range`, with
    `headers` added (also to a 416).

    A local file is sent from a memory map, or by the reverse proxy as `offload` says (an
    empty body with its header; the proxy honours `Range`), except when `background` or
    `on_sent` must follow the download: only we see our own last byte go. Other backends
    stream through `read_range`. `on_sent` runs once the last byte is handed to the server,
    never after a dropped download.

    Raises `ObjectNotFound` if missing, `RangeNotSatisfiable` for a range beyond the end.
    """
    extra = dict(headers or {})
    path = storage.local_path(key)
    if path is None:
        return await _streamed(storage, key, range_header, extra, background, on_sent, media_type)
    handover = (offload or FileOffload()).header(key, path)
    if handover is not None and background is None and on_sent is None:
        if not path.is_file():
            raise ObjectNotFound()
        return Response(media_type=media_type, headers={**extra, handover[0]: handover[1]})
    try:
        file: BinaryIO = path.open("rb")
    except FileNotFoundError:
        raise ObjectNotFound() from None
    try:
        status, start, end = _status_and_span(range_header, os.fstat(file.fileno()).st_size, extra)
    except RangeNotSatisfiable:
        file.close()
        raise
    return LocalFileResponse(
        file,
        start,
        end,
        status_code=status,
        headers=extra,
        media_type=media_type,
        background=background,
        on_sent=on_sent,
    )


async def storage_redirect(
    ctx: AppContext, key: str, headers: Mapping[str, str], filename: str | None = None
) -> RedirectResponse | None:
    """A 307 to a short-lived URL the storage signs for `key` (saved as `filename` when
    given), with `headers`; None unless the server is set to redirect (`storage_redirect`)
    and its storage can sign one (S3, not a local folder)."""
    if not ctx.settings.storage_redirect:
        return None
    ttl = ctx.settings.storage_redirect_seconds
    location = await run_in_threadpool(ctx.storage.presigned_url, key, ttl, filename)
    if location is None:
        return None
    return RedirectResponse(location, status_code=307, headers=dict(headers))


def _status_and_span(
    range_header: str | None, size: int, headers: dict[str, str]
) -> tuple[int, int, int]:
    """(status, first byte, last byte) to answer, adding the range headers to `headers`."""
    wanted = _range(range_header, size)
    if wanted == "unsatisfiable":
        raise RangeNotSatisfiable(size, headers)
    headers["Accept-Ranges"] = "bytes"
    if wanted is None or isinstance(wanted, str):
        return 200, 0, size - 1
    headers["Content-Range"] = f"bytes {wanted[0]}-{wanted[1]}/{size}"
    return 206, wanted[0], wanted[1]


async def _streamed(
    storage: Storage,
    key: str,
    range_header: str | None,
    headers: dict[str, str],
    background: BackgroundTask | None,
    on_sent: Sent | None,
    media_type: str,
) -> StreamingResponse:
    def opened() -> tuple[int, int, int, Iterator[bytes]]:
        status, start, end = _status_and_span(range_header, storage.size(key), headers)
        return status, start, end, storage.read_range(key, start, end)

    # A remote store (S3) answers over the network: never on the event loop.
    status, start, end, chunks = await run_in_threadpool(opened)
    headers["Content-Length"] = str(end - start + 1)
    return StreamingResponse(
        _then(chunks, on_sent),
        status_code=status,
        media_type=media_type,
        headers=headers,
        background=background,
    )


async def _then(chunks: Iterator[bytes], on_sent: Sent | None) -> AsyncIterator[bytes]:
    """`chunks` through the thread pool, then `on_sent` once the last is handed over."""
    async for chunk in iterate_in_threadpool(chunks):
        yield chunk
    if on_sent is not None:
        await on_sent()
