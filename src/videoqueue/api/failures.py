"""A failed job's stored `Failure`, rendered as Venice's retrieve answers it (spec §6)."""

from __future__ import annotations

from typing import Any

from videoqueue.jobs.failure import Failure, FailureKind

INFERENCE_FAILED = "Inference processing failed"


def venice_failure(failure: Failure) -> tuple[int, dict[str, Any]]:
    """(status, body): 422 ProviderContentPolicyError, or 500 with the details; both say
    whether the charge was refunded."""
    if failure.kind == FailureKind.CONTENT_POLICY:
        message = failure.message
        if failure.refunded:
            message += " Credits have been refunded."
        if failure.recommended_model:
            message += f" Try using {failure.recommended_model} instead."
        error: dict[str, Any] = {
            "message": message,
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
