"""Answering with a stored MP4: whole, or the byte range asked for."""

from __future__ import annotations

import re

from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response, StreamingResponse

from videoqueue.storage.base import Storage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


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
    storage: Storage, key: str, range_header: str | None, background: BackgroundTask | None = None
) -> Response:
    """`video/mp4` bytes of `key`, honouring `Range`. Raises `ObjectNotFound` if missing."""
    size = storage.size(key)
    wanted = _range(range_header, size)
    headers = {"Accept-Ranges": "bytes"}
    if wanted == "unsatisfiable":
        return JSONResponse(
            {"error": "Requested range not satisfiable"},
            status_code=416,
            headers={"Content-Range": f"bytes */{size}"},
        )
    start, end = (0, size - 1) if wanted is None or isinstance(wanted, str) else wanted
    chunks = storage.read_range(key, start, end)
    headers["Content-Length"] = str(end - start + 1)
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    return StreamingResponse(
        chunks, status_code=status, media_type="video/mp4", headers=headers, background=background
    )
