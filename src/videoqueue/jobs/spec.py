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
from videoqueue.engines.base import Element, JobInput, Media

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

    def to_json(self) -> dict[str, Any]:
        # By hand rather than `asdict`, whose deep copies cost a tenth of a queue request.
        media = self.media
        return {
            **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "media"},
            "media": {
                "image": media.image,
                "end_image": media.end_image,
                "audio": media.audio,
                "video": media.video,
                "reference_images": list(media.reference_images),
                "reference_videos": list(media.reference_videos),
                "reference_audios": list(media.reference_audios),
                "elements": [
                    {
                        "frontal_image": e.frontal_image,
                        "reference_images": list(e.reference_images),
                        "video": e.video,
                    }
                    for e in media.elements
                ],
                "scene_images": list(media.scene_images),
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        media = data["media"]
        elements = tuple(
            Element(
                frontal_image=e["frontal_image"],
                reference_images=tuple(e["reference_images"]),
                video=e["video"],
            )
            for e in media["elements"]
        )
        lists = ("reference_images", "reference_videos", "reference_audios", "scene_images")
        return cls(
            # A spec stored before jobs had a time limit gets today's default.
            **{"max_run_seconds": DEFAULT_MAX_RUN_SECONDS}
            | {k: v for k, v in data.items() if k != "media"},
            media=Media(
                image=media["image"],
                end_image=media["end_image"],
                audio=media["audio"],
                video=media["video"],
                elements=elements,
                **{k: tuple(media[k]) for k in lists},
            ),
        )

    def engine_input(self, *, job_id: str, model: str, media: Media[Path]) -> JobInput:
        """The engine's view of this spec, with the inputs fetched to local files."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in WORKER_ONLY}
        return JobInput(job_id=job_id, model=model, media=media, **values)
