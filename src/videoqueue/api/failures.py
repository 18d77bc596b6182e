"""A failed job's stored `Failure`, rendered as Venice's retrieve answers it (spec §6), and
as the `error` of an OpenAI video object."""

from __future__ import annotations

from typing import Any

from videoqueue.jobs.failure import Failure, FailureKind

INFERENCE_FAILED = "Inference processing failed"
REFUNDED = " Credits have been refunded."


def _content_policy_message(failure: Failure) -> str:
    message = failure.message
    if failure.refunded:
        message += REFUNDED
    if failure.recommended_model:
        message += f" Try using {failure.recommended_model} instead."
    return message


def openai_failure(failure: Failure) -> dict[str, str]:
    """`{code, message}`: the kind as the code, the message saying whether it was refunded."""
    if failure.kind == FailureKind.CONTENT_POLICY:
        message = _content_policy_message(failure)
    else:
        message = f"{INFERENCE_FAILED}: {failure.message}" + (REFUNDED if failure.refunded else "")
    return {"code": failure.kind.value, "message": message}


def venice_failure(failure: Failure) -> tuple[int, dict[str, Any]]:
    """(status, body): 422 ProviderContentPolicyError, or 500 with the details; both say
    whether the charge was refunded."""
    if failure.kind == FailureKind.CONTENT_POLICY:
        error: dict[str, Any] = {
            "message": _content_policy_message(failure),
            "type": "provider_content_policy",
            "credits_refunded": failure.refunded,
        }
        if failure.recommended_model:
            error["recommended_model"] = failure.recommended_model
        return 422, {"error": error}
    return 500, {
        "error": INFERENCE_FAILED,
        "details": failure.message,
        "credits_refunded": failure.refunded,
    }
