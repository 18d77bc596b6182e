"""A validated video request, as the rest of videoqueue sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SOURCE_MATCHED = frozenset({"-1", "auto", "Auto"})
DEFAULT_SECONDS = 5.0


def duration_seconds(duration: str) -> float | None:
    """`"5s"` → 5.0; a duration taken from the source (`Auto`, `-1`) → None."""
    if duration in SOURCE_MATCHED:
        return None
    if duration == "1 gen":
        return DEFAULT_SECONDS
    return float(duration.removesuffix("s"))


@dataclass(frozen=True)
class VideoRequest:
    """A `/video/queue` or `/video/quote` body after validation against its model."""

    model: str
    prompt: str = ""
    negative_prompt: str = ""
    duration: str = "Auto"
    resolution: str | None = None
    aspect_ratio: str | None = None
    audio: bool = False
    upscale_factor: int | None = None
    media: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    reference_video_total_duration: float | None = None
    input_height: int | None = None
    webhook_url: str | None = None
    """Where the job's end is announced (ours: Venice has no webhooks)."""
    seed: int | None = None
    """The engine's seed, when the client chose one (ours: Venice takes none)."""

    @property
    def duration_seconds(self) -> float | None:
        """`"5s"` → 5.0; a duration taken from the source (`Auto`, `-1`) → None."""
        return duration_seconds(self.duration)

    def as_json(self) -> dict[str, Any]:
        """Every field by name (shallow: the dicts are the request's own, not copies)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VideoRequest:
        return cls(**data)
