"""Answering with a stored MP4: whole, or the byte range asked for."""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from videoqueue.errors import VideoqueueError
from videoqueue.storage.base import Storage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


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


def mp4_response(
    storage: Storage,
    key: str,
    range_header: str | None,
    background: BackgroundTask | None = None,
    headers: Mapping[str, str] | None = None,
) -> StreamingResponse:
    """`video/mp4` bytes of `key`, honouring `Range`, with `headers` added (also to a 416).

    Raises `ObjectNotFound` if missing, `RangeNotSatisfiable` for a range beyond the end.
    """
    extra = dict(headers or {})
    size = storage.size(key)
    wanted = _range(range_header, size)
    if wanted == "unsatisfiable":
        raise RangeNotSatisfiable(size, extra)
    start, end = (0, size - 1) if wanted is None or isinstance(wanted, str) else wanted
    chunks = storage.read_range(key, start, end)
    extra.update({"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)})
    status = 200
    if wanted is not None:
        status = 206
        extra["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(
        chunks, status_code=status, media_type="video/mp4", headers=extra, background=background
    )
