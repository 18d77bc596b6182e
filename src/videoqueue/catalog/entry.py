"""The shape of one catalogue entry: a Venice video model's constraints, rules and price.

Entries are data (`models.toml`); these classes only check that data on load.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MEDIA_FIELDS = (
    "image_url",
    "end_image_url",
    "audio_url",
    "video_url",
    "reference_image_urls",
    "reference_video_urls",
    "reference_audio_urls",
    "elements",
    "scene_image_urls",
)


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Constraints(_Data):
    """Exactly the `constraints` keys Venice publishes in `/models`."""

    model_type: Literal["text-to-video", "image-to-video", "video"]
    aspect_ratios: tuple[str, ...]
    resolutions: tuple[str, ...]
    durations: tuple[str, ...]
    audio: bool
    audio_configurable: bool
    audio_input: bool = False
    per_reference_audio: bool = False
    video_input: bool = False
    prompt_character_limit: int | None = None
    reference_image_min_short_side_pixels: int | None = None
    reference_image_min_aspect_ratio: float | None = None
    reference_image_max_aspect_ratio: float | None = None


class ClipLimit(_Data):
    """Limits of a list of reference clips (videos or audios)."""

    max_items: int
    min_seconds: float = 2.0
    max_seconds: float = 15.0
    total_seconds: float = 15.0
    max_bytes: int = 50 * 1024 * 1024


class Family(_Data):
    """Rules shared by a model family that `/models` does not advertise."""

    reference_images_min: int = 0
    reference_images_max: int = 0
    reference_videos: ClipLimit | None = None
    reference_audios: ClipLimit | None = None
    elements: bool = False
    scene_images: bool = False
    max_visual_inputs: int | None = None
    bitrate_mode: bool = False
    omni_reference_task_type: bool = False
    source_matched_durations: tuple[str, ...] = ()
    source_matched_aspect_ratios: tuple[str, ...] = ()
    face_consent: bool = False


class PerSecondPrice(_Data):
    """USD per output second, by resolution (key `*` when the model has none)."""

    rule: Literal["per_second"]
    rates: dict[str, float]
    audio_multiplier: float = 1.0
    reference_video_rates: dict[str, float] | None = None


class PerGenerationPrice(_Data):
    """A fixed USD amount per generation."""

    rule: Literal["per_generation"]
    amount: float


class UpscaleTier(_Data):
    max_height: int | None = None
    rate: float


class UpscalePrice(_Data):
    """USD per source second by output-height tier, multiplied above a frame rate."""

    rule: Literal["upscale"]
    tiers: tuple[UpscaleTier, ...]
    high_fps_threshold: float = 48.0
    high_fps_multiplier: float = 2.0


PriceRule = Annotated[
    PerSecondPrice | PerGenerationPrice | UpscalePrice, Field(discriminator="rule")
]


class Deprecation(_Data):
    date: str
    removesAt: str | None = None  # noqa: N815 - Venice's wire name
    autoRemap: bool = False  # noqa: N815
    replacementModelId: str | None = None  # noqa: N815


class ModelEntry(_Data):
    """One video model: what `/models` says of it and what validation and pricing enforce."""

    id: str
    name: str
    created: int
    privacy: Literal["anonymized", "private"] = "anonymized"
    constraints: Constraints
    family: str | None = None
    requires: tuple[str, ...] = ()
    accepts: tuple[str, ...] = ()
    model_sets: tuple[str, ...] = ()
    traits: tuple[str, ...] = ()
    uncensored: bool = False
    offline: bool = False
    beta: bool = False
    description: str | None = None
    deprecation: Deprecation | None = None
    delivery: Literal["bytes", "download_url"] = "bytes"
    listed: bool = True
    engine: str = "preview"
    default_resolution: str | None = None
    price: PriceRule
