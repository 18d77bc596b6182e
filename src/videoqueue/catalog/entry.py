"""The shape of one catalogue entry: a Venice video model's constraints, rules and price.

Entries are data (`models.toml`, and an operator's overlay of the same layout); these classes
only check that data on load. `catalog.check_consistency` checks what spans several entries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
"""The media fields a model may require or accept, in the order of Venice's request schema."""

REQUIREMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "reference": (
        ("reference_image_urls", "reference_video_urls"),
        "At least one reference is required for this model",
    ),
    "reference_image": (("reference_image_urls",), "At least one reference image is required"),
    "visual": (
        ("image_url", "elements", "scene_image_urls"),
        "At least one visual input (image_url, elements or scene_image_urls) is required "
        "for this model",
    ),
}
"""`requires` names that are satisfied by any one of several fields: (fields, Venice's message)."""


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
    """Rules shared by a model family that `/models` does not advertise (spec §11).

    A limit left unset is Venice's request-schema limit for every model.
    """

    reference_images_max: int | None = None
    reference_videos: ClipLimit | None = None
    reference_audios: ClipLimit | None = None
    audio_url_is_reference: bool = False
    """`audio_url` counts as one more reference audio (Seedance R2V, spec §4.1)."""
    elements_max: int | None = None
    elements_max_with_frame: int | None = None
    """The most elements when a start or end frame is also given (Kling O3 R2V: 3)."""
    scene_images_max: int | None = None
    max_visual_inputs: int | None = None
    """Start + end frame + elements + scene images, at most (Kling O3 R2V: 7)."""
    prompt_references: dict[str, str] = {}
    """Prompt tags and the list each points into: `{"@Element" = "elements"}` makes
    `@Element3` need a third element."""
    bitrate_mode: bool = False
    omni_reference_task_type: bool = False
    source_matched_durations: tuple[str, ...] = ()
    source_matched_aspect_ratios: tuple[str, ...] = ()
    source_clip_seconds: tuple[float, float] | None = None
    """With a source-matched duration: the (min, max) length of the source clip (the first
    reference video)."""
    face_consent: bool = False


class Upscale(_Data):
    """An upscale model: `upscale_factor` instead of `resolution`, duration from the file."""

    factors: tuple[int, ...] = (1, 2, 4)
    default_factor: int = 2
    max_input_seconds: float = 300.0
    max_output_pixels: int = 4096 * 2160
    """The largest output frame (width x height): DCI 4K lets a 1080p input go x2, and a x4
    needs an input of at most ~1024x540. Queue refuses larger with 400; the engine holds it."""


class PerSecondPrice(_Data):
    """USD per output second, by resolution (key `*` when the model has none)."""

    rule: Literal["per_second"]
    rates: dict[str, float]
    audio_multiplier: float = 1.0
    reference_video_rates: dict[str, float] | None = None
    """With reference videos: this rate x (reference seconds + output seconds)."""


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


def instant(text: str) -> datetime:
    """An ISO 8601 date or instant as a UTC time (a bare date is its midnight UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Deprecation(_Data):
    date: str
    removesAt: str | None = None  # Venice's wire names
    autoRemap: bool = False
    replacementModelId: str | None = None
    startsAt: str | None = None

    @field_validator("date", "removesAt", "startsAt")
    @classmethod
    def _an_instant(cls, text: str | None) -> str | None:
        if text is not None:
            instant(text)  # raises ValueError, which pydantic reports with the field
        return text

    @property
    def removes_at(self) -> datetime:
        """When the model leaves `/models` and is refused (Venice: `removesAt`, else `date`)."""
        return instant(self.removesAt or self.date)

    @property
    def warns_from(self) -> datetime | None:
        """When requests start to carry the deprecation headers (None: as soon as listed)."""
        return instant(self.startsAt) if self.startsAt else None


DEFAULT_MAX_RUN_SECONDS = 1800.0
"""A model's time limit when its entry names none: long enough for a 720p open model."""


class ModelEntry(_Data):
    """One video model: what `/models` says of it and what validation and pricing enforce."""

    id: str
    name: str
    created: int
    privacy: Literal["anonymized", "private"] = "anonymized"
    constraints: Constraints
    family: str | None = None
    requires: tuple[str, ...] = ()
    """Media fields that must be present, or names from `REQUIREMENTS`."""
    accepts: tuple[str, ...] = ()
    """Optional media fields beyond `requires`; any other media field is refused."""
    aspect_ratio_required: bool = False
    upscale: Upscale | None = None
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
    fps: int = Field(default=24, gt=0)
    """The frame rate the engine renders this model at."""
    default_resolution: str | None = None
    audio_request: Literal["silent_track", "refuse"] = "silent_track"
    """How a request's `audio: true` is answered when the model makes no sound
    (`constraints.audio = false`): a video without sound, as Venice does, or a 400."""
    max_run_seconds: float = Field(default=DEFAULT_MAX_RUN_SECONDS, gt=0)
    """How long one job may run on its engine before it fails (refunded) and the engine's
    process is replaced."""
    price: PriceRule

    def is_removed(self, now: datetime) -> bool:
        """Whether the model's deprecation has removed it by `now`."""
        return self.deprecation is not None and now >= self.deprecation.removes_at

    @property
    def prompt_limit(self) -> int:
        """The most characters `prompt` and `negative_prompt` may hold (Venice's default 2500)."""
        return self.constraints.prompt_character_limit or DEFAULT_PROMPT_LIMIT


DEFAULT_PROMPT_LIMIT = 2500

KIND_OF_INPUT = {
    "image_url": "image",
    "end_image_url": "first-last-frame",
    "video_url": "video-to-video",
    "reference_image_urls": "reference",
    "reference_video_urls": "reference",
    "elements": "reference",
    "scene_image_urls": "reference",
    "reference": "reference",
    "reference_image": "reference",
    "visual": "reference",
}
"""The job kind (engines' `JobKind` values) a model asks of its engine when it takes an input."""


def job_kinds(entry: ModelEntry) -> frozenset[str]:
    """Every kind of job a request for this model can be: its engine must do them all."""
    if entry.upscale is not None:
        return frozenset({"upscale"})
    kinds = {KIND_OF_INPUT[f] for f in (*entry.requires, *entry.accepts) if f in KIND_OF_INPUT}
    if entry.constraints.model_type == "text-to-video":
        kinds.add("text")
    return frozenset(kinds)
