"""The operator's content-policy hook: prompt rules checked before any media is read or charged."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from videoqueue.errors import VideoqueueError
from videoqueue.settings import ContentRule


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
