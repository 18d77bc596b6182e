"""A model's frame sizes and lengths in the OpenAI videos API's terms (`size` "1280x720",
`seconds` "8"), each with the Venice resolution, aspect ratio or duration that gives it."""

from __future__ import annotations

from dataclasses import dataclass

from videoqueue.catalog import schema
from videoqueue.catalog.entry import Family, ModelEntry
from videoqueue.catalog.geometry import DEFAULT_ASPECT, aspect_value, frame_size


@dataclass(frozen=True)
class Shape:
    """The Venice fields that give one frame size (None: the model takes no such field)."""

    resolution: str | None
    aspect_ratio: str | None


def offered_sizes(entry: ModelEntry, family: Family) -> dict[str, Shape]:
    """Each `WIDTHxHEIGHT` the model renders, in catalogue order, with its shape.

    A model without aspect ratios renders 16:9 (or, given a first frame, that image's shape).
    Where two resolutions give one size (`1080p`, `true_1080p`), the first listed serves it.
    An upscale model offers none: its size comes from its input.
    """
    if entry.upscale is not None:
        return {}
    resolutions: tuple[str | None, ...] = entry.constraints.resolutions or (None,)
    ratios: tuple[str | None, ...] = tuple(
        a for a in schema.aspect_ratios(entry, family) if aspect_value(a) is not None
    ) or (None,)
    sizes: dict[str, Shape] = {}
    for resolution in resolutions:
        for ratio in ratios:
            aspect = aspect_value(ratio or DEFAULT_ASPECT) or 16 / 9
            width, height = frame_size(resolution, aspect)
            sizes.setdefault(f"{width}x{height}", Shape(resolution, ratio))
    return sizes


def offered_seconds(entry: ModelEntry) -> dict[str, str]:
    """Each whole number of seconds the model renders (`"8"`) with its duration (`"8s"`)."""
    offered: dict[str, str] = {}
    for duration in entry.constraints.durations:
        number = duration.removesuffix("s")
        if duration.endswith("s") and number.isdigit():
            offered[number] = duration
    return offered


def default_duration(entry: ModelEntry) -> str:
    """The duration of a request that gives no `seconds`: 4 s as OpenAI's, else the model's
    first."""
    durations = entry.constraints.durations
    return "4s" if "4s" in durations else durations[0]
