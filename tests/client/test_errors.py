"""Each of Venice's error bodies becomes the typed error of its status, with its message and
code read from wherever that shape keeps them."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from videoqueue.client.errors import (
    Conflict,
    PaymentRequired,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Unprocessable,
    VideoqueueError,
    error_for,
)


def _error(status: int, body: Any = None, **headers: str) -> VideoqueueError:
    if body is None:
        return error_for(httpx.Response(status, text="upstream went away", headers=headers))
    return error_for(httpx.Response(status, json=body, headers=headers))


def test_a_provider_content_policy_body_keeps_its_nested_message_and_type() -> None:
    error = _error(
        422,
        {
            "error": {
                "message": "Rejected. Credits have been refunded.",
                "type": "provider_content_policy",
                "credits_refunded": True,
            }
        },
    )
    assert isinstance(error, Unprocessable)
    assert (error.message, error.code) == (
        "Rejected. Credits have been refunded.",
        "provider_content_policy",
    )
    assert error.body["error"]["credits_refunded"] is True


def test_a_top_up_error_puts_its_code_in_error_and_its_text_in_message() -> None:
    error = _error(409, {"error": "X402_PAYMENT_IN_PROGRESS", "message": "being settled"})
    assert isinstance(error, Conflict)
    assert (error.status, error.code, error.message) == (
        409,
        "X402_PAYMENT_IN_PROGRESS",
        "being settled",
    )


def test_a_standard_error_with_a_code() -> None:
    error = _error(
        429,
        {"error": "Too many concurrent requests", "code": "X402_CONCURRENCY_LIMIT"},
        **{"Retry-After": "3"},
    )
    assert isinstance(error, RateLimited)
    assert (error.code, error.message, error.retry_after) == (
        "X402_CONCURRENCY_LIMIT",
        "Too many concurrent requests",
        3.0,
    )
    assert str(error) == "429 X402_CONCURRENCY_LIMIT: Too many concurrent requests"


def test_a_402_decodes_its_payment_required_header() -> None:
    required = {"x402Version": 2, "accepts": [{"scheme": "exact", "amount": "5000000"}]}
    header = base64.b64encode(json.dumps(required).encode()).decode()
    error = _error(
        402, {"x402Version": 2, "error": "Authentication required"}, **{"PAYMENT-REQUIRED": header}
    )
    assert isinstance(error, PaymentRequired)
    assert error.requirements == required
    assert _error(402, {"error": "Insufficient balance"}).requirements is None  # type: ignore[attr-defined]


def test_server_failures_and_bodies_that_are_not_json() -> None:
    unavailable = _error(503, {"error": "The model is at capacity.", "code": "MODEL_AT_CAPACITY"})
    assert isinstance(unavailable, ServiceUnavailable) and isinstance(unavailable, ServerError)
    gateway = _error(502)
    assert type(gateway) is ServerError
    assert (gateway.status, gateway.message, gateway.body) == (
        502,
        "Bad Gateway",
        "upstream went away",
    )
    teapot = _error(418, {"error": "short and stout"})
    assert type(teapot) is VideoqueueError and teapot.status == 418
