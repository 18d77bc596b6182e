"""The errors a server's answer becomes: one class per status, all under `VideoqueueError`."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


class VideoqueueError(Exception):
    """The server refused the request."""

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.code = code
        self.body = body

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        return f"{self.status}{code}: {self.message}"


class BadRequest(VideoqueueError):
    """The request was not valid for this server or model (details in `body`)."""

    status = 400


class AuthenticationFailed(VideoqueueError):
    """The key or the wallet's sign-in was refused."""

    status = 401


class PaymentRequired(VideoqueueError):
    """Not enough credit, or no credentials at all.

    `requirements` is the decoded x402 `PAYMENT-REQUIRED` header (`{x402Version, accepts, …}`)
    when the server sent one.
    """

    status = 402

    def __init__(self, message: str, *, requirements: dict[str, Any] | None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.requirements = requirements


class Forbidden(VideoqueueError):
    status = 403


class NotFound(VideoqueueError):
    """No such job (unknown, expired or deleted), or no such model."""

    status = 404


class Conflict(VideoqueueError):
    """The request conflicts with an earlier one (an idempotency key reused on another body,
    a consent to give first)."""

    status = 409


class JobEnded(Conflict):
    """The job to cancel has already ended (completed, failed or cancelled): nothing changed."""


class NotSupported(VideoqueueError):
    """The server has no such route (404 or 405): Venice has no `/video/jobs`,
    `/video/jobs/{queue_id}` nor `/video/cancel`, which only videoqueue offers."""


class Unprocessable(VideoqueueError):
    """Content policy, or media out of range."""

    status = 422


class RateLimited(VideoqueueError):
    """Too many requests; `retry_after` is the server's wait in seconds, when it gave one."""

    status = 429

    def __init__(self, message: str, *, retry_after: float | None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(VideoqueueError):
    """The server failed (5xx)."""

    status = 500


class ServiceUnavailable(ServerError):
    status = 503


class JobNotReady(VideoqueueError):
    """The job has no video yet (still processing)."""


class WaitTimedOut(VideoqueueError):
    """`wait()` gave up before the job finished."""


_BY_STATUS: dict[int, type[VideoqueueError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        AuthenticationFailed,
        Forbidden,
        NotFound,
        Conflict,
        Unprocessable,
        ServiceUnavailable,
    )
}


def retry_after_seconds(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (a number or an HTTP date), None without a usable one."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def payment_requirements(response: httpx.Response) -> dict[str, Any] | None:
    """The decoded `PAYMENT-REQUIRED` header of a 402, if it holds a JSON object."""
    header = response.headers.get("payment-required")
    if header is None:
        return None
    try:
        decoded = json.loads(base64.b64decode(header))
    except (binascii.Error, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None


def _message_and_code(body: Any, fallback: str) -> tuple[str, str | None]:
    """Read Venice's error shapes: `{error}`, `{error, code}`, `{error: {message, type}}`, and
    the top-up's `{error: "X402_…", message}`."""
    if not isinstance(body, dict):
        return fallback, None
    error = body.get("error")
    code = body.get("code") if isinstance(body.get("code"), str) else None
    if isinstance(error, dict):
        message = error.get("message")
        kind = error.get("type")
        return (message if isinstance(message, str) else fallback), (
            code or (kind if isinstance(kind, str) else None)
        )
    message = body.get("message")
    if isinstance(error, str) and isinstance(message, str):
        if code is None and error.isupper():
            return message, error
        return error, code
    if isinstance(error, str):
        return error, code
    if isinstance(message, str):
        return message, code
    return fallback, code


def error_for(response: httpx.Response) -> VideoqueueError:
    """The typed error for a response of status 400 or more."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    status = response.status_code
    message, code = _message_and_code(body, response.reason_phrase or f"HTTP {status}")
    common: dict[str, Any] = {"status": status, "code": code, "body": body}
    if status == 402:
        return PaymentRequired(message, requirements=payment_requirements(response), **common)
    if status == 429:
        return RateLimited(message, retry_after=retry_after_seconds(response), **common)
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else VideoqueueError
    return cls(message, **common)
