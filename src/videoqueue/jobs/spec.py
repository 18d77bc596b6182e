"""What a job makes, decided once when it is accepted and stored with it.

Every value the engine needs is here, none left for the worker to default: frame size, rate
and count, seed, audio, prompts, the upscale factor and cap, and every stored input by role;
and the time the worker gives the engine (the model's `max_run_seconds`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from videoqueue.catalog.entry import DEFAULT_MAX_RUN_SECONDS
from videoqueue.engines.base import Element, JobInput, Media, UpstreamJob

# What the worker needs but the engine is not told.
WORKER_ONLY = frozenset({"media", "max_run_seconds"})


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """A job's generation parameters, with its inputs as storage keys."""

    prompt: str
    negative_prompt: str
    width: int
    height: int
    fps: int
    frame_count: int
    duration_s: float
    audio: bool
    seed: int
    upscale_factor: int | None
    max_output_pixels: int | None
    max_run_seconds: float
    media: Media[str]

    def _values(self, leave_out: frozenset[str]) -> dict[str, Any]:
        # Field by field rather than `asdict`, whose deep copies cost a tenth of a queue request.
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in leave_out}

    def to_json(self) -> dict[str, Any]:
        media = {f.name: getattr(self.media, f.name) for f in fields(Media)}
        media["elements"] = [
            {f.name: getattr(e, f.name) for f in fields(Element)} for e in self.media.elements
        ]
        return {**self._values(frozenset({"media"})), "media": media}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        media = _tuples(data["media"])
        media["elements"] = tuple(Element(**_tuples(e)) for e in media["elements"])
        return cls(
            # A spec stored before jobs had a time limit gets today's default.
            **{"max_run_seconds": DEFAULT_MAX_RUN_SECONDS}
            | {k: v for k, v in data.items() if k != "media"},
            media=Media(**media),
        )

    def engine_input(
        self,
        *,
        job_id: str,
        model: str,
        media: Media[Path],
        media_urls: Media[str] | None = None,
        upstream: UpstreamJob | None = None,
    ) -> JobInput:
        """The engine's view of this spec, with the inputs fetched to local files (and as
        links, where the worker signs them; and the upstream job an earlier attempt started)."""
        values = self._values(WORKER_ONLY)
        return JobInput(
            job_id=job_id,
            model=model,
            media=media,
            media_urls=media_urls,
            upstream=upstream,
            **values,
        )


def _tuples(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored role table with its lists (JSON arrays) back as tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()}
