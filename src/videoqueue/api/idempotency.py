"""The `Idempotency-Key` request header of `/video/queue`."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from videoqueue.catalog.issues import BadRequest
from videoqueue.jobs.idempotency import IdempotencyKey, request_fingerprint
from videoqueue.jobs.models import MAX_IDEMPOTENCY_KEY_LENGTH


def idempotency_key(request: Request, body: dict[str, Any]) -> IdempotencyKey | None:
    """None without the header; raises `BadRequest` for an empty or overlong key."""
    header = request.headers.get("idempotency-key")
    if header is None:
        return None
    key = header.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise BadRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
    return IdempotencyKey(key=key, fingerprint=request_fingerprint(body))
