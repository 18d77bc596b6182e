"""Output frame sizes from Venice's resolution and aspect-ratio names."""

from __future__ import annotations

LINES = {
    "256p": 256,
    "360p": 360,
    "480p": 480,
    "540p": 540,
    "580p": 580,
    "720p": 720,
    "768P": 768,
    "1080p": 1080,
    "true_1080p": 1080,
    "1440p": 1440,
    "2K": 1440,
    "2160p": 2160,
    "4k": 2160,
}
DEFAULT_LINES = 720
DEFAULT_ASPECT = "16:9"


def aspect_value(aspect_ratio: str) -> float | None:
    """`"16:9"` → 1.777…; `auto`/`adaptive` (match the source) → None."""
    if ":" not in aspect_ratio:
        return None
    w, h = aspect_ratio.split(":")
    return int(w) / int(h)


def even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def frame_size(resolution: str | None, aspect: float) -> tuple[int, int]:
    """(width, height): the height is the resolution's number of lines, both even."""
    height = LINES.get(resolution or "", DEFAULT_LINES)
    return even(height * aspect), even(height)
