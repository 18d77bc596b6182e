"""The OpenAI videos API's shapes: the video object, its list and deleted objects, and errors
as `{"error": {"message", "type", "param", "code"}}`.

Errors are the same `VideoqueueError`s Venice's routes raise; the app's one handler renders
them here when the path is one of this API's (`speaks_openai`).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from videoqueue.api.failures import openai_failure
from videoqueue.catalog.issues import InvalidParameters
from videoqueue.errors import VideoqueueError
from videoqueue.jobs.states import JobState
from videoqueue.jobs.views import JobPage, JobView

PREFIXES = ("/v1", "/api/v1")
"""Where the API is mounted: OpenAI's own path, and beside Venice's routes."""
_PATHS = re.compile(r"^(/api)?/v1/videos(/|$)")

STATUS = {
    JobState.QUEUED: "queued",
    JobState.RUNNING: "in_progress",
    JobState.COMPLETED: "completed",
    JobState.FAILED: "failed",
    JobState.CANCELLED: "failed",
}
CANCELLED = {"code": "cancelled", "message": "The video was cancelled before it finished."}

PARAMS = {
    "model": "model",
    "prompt": "prompt",
    "duration": "seconds",
    "resolution": "size",
    "aspect_ratio": "size",
    "image_url": "input_reference",
}
"""Venice's request fields as the OpenAI parameters they come from."""

ERROR_TYPES = {401: "invalid_request_error", 402: "insufficient_quota", 429: "rate_limit_error"}
DEFAULT_CODES = {
    401: "invalid_api_key",
    402: "insufficient_quota",
    404: "not_found",
    429: "rate_limit_exceeded",
}


def speaks_openai(path: str) -> bool:
    """Whether `path` is one of this API's (its errors take OpenAI's shape)."""
    return _PATHS.match(path) is not None


def _seconds(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def video_object(view: JobView, *, retention: timedelta | None) -> dict[str, Any]:
    """The job as the SDK's `Video`; `error` is the stored failure, rendered; `expires_at`,
    once it has ended under a retention, when its media is deleted."""
    status = STATUS[view.state]
    error = None
    if view.failure is not None:
        error = openai_failure(view.failure)
    elif view.state == JobState.CANCELLED:
        error = CANCELLED
    finished = view.finished_at if status in ("completed", "failed") else None
    expires = None if finished is None or retention is None else finished + retention
    return {
        "id": view.id,
        "object": "video",
        "model": view.model,
        "status": status,
        "progress": 100 if status == "completed" else round(view.progress * 100),
        "created_at": _seconds(view.created_at),
        "completed_at": _seconds(finished),
        "expires_at": _seconds(expires),
        "seconds": f"{view.duration_s:g}",
        "size": f"{view.width}x{view.height}",
        "prompt": view.prompt,
        "remixed_from_video_id": None,
        "error": error,
    }


def video_list(page: JobPage, *, retention: timedelta | None) -> dict[str, Any]:
    """`{object: "list", data, first_id, last_id, has_more}`."""
    data = [video_object(view, retention=retention) for view in page.views]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
    }


def deleted(video_id: str) -> dict[str, Any]:
    return {"id": video_id, "object": "video.deleted", "deleted": True}


def openai_error(
    status: int, message: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    kind = "server_error" if status >= 500 else ERROR_TYPES.get(status, "invalid_request_error")
    return {
        "error": {
            "message": message,
            "type": kind,
            "param": param,
            "code": code or DEFAULT_CODES.get(status),
        }
    }


def _param_in(message: str) -> tuple[str | None, str]:
    """The parameter a Venice message is about (`image_url: …`, `This model does not
    support image_url`) as OpenAI names it, and the message with a leading field so named."""
    for field, param in PARAMS.items():
        if message.startswith(f"{field}:"):
            return param, param + message.removeprefix(field)
        if message.endswith(f" {field}"):
            return param, message
    return None, message


def _named(path: tuple[str | int, ...]) -> str:
    """An issue's path with its field as the OpenAI parameter it comes from."""
    if not path:
        return ""
    return ".".join([PARAMS.get(str(path[0]), str(path[0])), *(str(p) for p in path[1:])])


def error_body(error: VideoqueueError) -> dict[str, Any]:
    """The error in OpenAI's shape: its message (each issue, for invalid parameters), the
    parameter it is about, and its code in lower case."""
    param: str | None = getattr(error, "param", None)
    message = error.message
    if param is None:
        param, message = _param_in(message)
    if isinstance(error, InvalidParameters) and error.issues:
        named = [_named(issue.path) for issue in error.issues]
        param = named[0] or None
        message += ": " + "; ".join(
            f"{name}: {issue.message}" if name else issue.message
            for name, issue in zip(named, error.issues, strict=True)
        )
    code = error.code.lower() if error.code else None
    return openai_error(error.status, message, code=code, param=param)
