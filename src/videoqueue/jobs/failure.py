"""Why a job failed, stored as data: each API dialect renders it in its own error shape."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from videoqueue.engines.base import EngineError, ProviderContentPolicy


class FailureKind(enum.StrEnum):
    INFERENCE = "inference_failed"
    CONTENT_POLICY = "provider_content_policy"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    message: str
    refunded: bool
    recommended_model: str | None = None

    @classmethod
    def of(cls, error: EngineError) -> Failure:
        """The failure an engine's error stands for (refunded when the error is refundable)."""
        if isinstance(error, ProviderContentPolicy):
            return cls(
                FailureKind.CONTENT_POLICY,
                error.message,
                error.refundable,
                error.recommended_model,
            )
        return cls(FailureKind.INFERENCE, error.message, error.refundable)


WORKER_LOST = Failure(FailureKind.INFERENCE, "the worker running this job was lost", True)
