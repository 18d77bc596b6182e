"""The operator's content-policy hook: prompt rules checked before any media is read or charged."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from videoqueue.errors import VideoqueueError


class ContentRule(BaseModel):
    """An operator's prompt rule: a prompt matching `pattern` (a regular expression, case
    ignored) is refused with 422, optionally suggesting a prompt to send instead."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str
    suggested_prompt: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value


class ContentViolation(VideoqueueError):
    """Your prompt violates the content policy of Venice.ai or the model provider"""

    status = 422

    def __init__(self, suggested_prompt: str | None = None) -> None:
        super().__init__()
        self.suggested_prompt = suggested_prompt

    def body(self) -> dict[str, Any]:
        """Venice's ContentViolationError: `{"error", "suggested_prompt"?}` (spec §3.1)."""
        body: dict[str, Any] = {"error": self.message}
        if self.suggested_prompt is not None:
            body["suggested_prompt"] = self.suggested_prompt
        return body


def check_prompt(prompt: str, rules: Sequence[ContentRule]) -> None:
    """Raise `ContentViolation` for the first rule whose pattern occurs in `prompt`."""
    for rule in rules:
        if re.search(rule.pattern, prompt, flags=re.IGNORECASE):
            raise ContentViolation(rule.suggested_prompt)
