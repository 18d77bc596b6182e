"""Turning a validated request into a job's parts: its stored media and its `JobSpec`.

Media is fetched, decoded, checked and stored under the new job's id before any database
transaction (no lock is held while a URL is fetched); the service then charges and creates
the job in one transaction, or deletes what was stored here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from videoqueue.catalog.entry import ModelEntry
from videoqueue.catalog.geometry import DEFAULT_ASPECT, aspect_value, frame_size
from videoqueue.catalog.media_intake import check_upscale_input, source_video
from videoqueue.catalog.pricing import SourceVideo, output_seconds
from videoqueue.catalog.request import VideoRequest
from videoqueue.engines.base import Element, Media
from videoqueue.jobs.spec import JobSpec
from videoqueue.media.checks import MediaFacts, MediaInspector
from videoqueue.media.intake import MediaBlob
from videoqueue.storage.base import Storage
from videoqueue.storage.layout import input_key, job_prefix

LoadMedia = Callable[[str, str], bytes]
"""(url, field name) → the bytes behind a media URL; raises a 4xx error when it cannot."""

SINGLE_ROLES = {
    "image_url": "image",
    "end_image_url": "end_image",
    "audio_url": "audio",
    "video_url": "video",
}
LIST_ROLES = {
    "reference_image_urls": "reference_images",
    "reference_video_urls": "reference_videos",
    "reference_audio_urls": "reference_audios",
    "scene_image_urls": "scene_images",
}
ELEMENT_ROLES = {
    "frontal_image_url": "frontal_image",
    "reference_image_urls": "reference_images",
    "video_url": "video",
}

# Without an aspect_ratio (or with `auto`/`adaptive`), the output takes the shape of the first
# of these inputs that the request has: the first frame, the input video, the source clip.
SHAPE_SOURCES = ("image_url", "video_url", "reference_video_urls[0]")


@dataclass(frozen=True)
class StoredMedia:
    """A request's media, stored under `job_id`, and what decoding each file found."""

    job_id: str
    media: Media[str] = field(default_factory=Media)
    facts: tuple[MediaFacts, ...] = ()
    source: SourceVideo | None = None
    """The probed `video_url` (upscale, video-to-video)."""

    @property
    def reference_seconds(self) -> float:
        """The probed length of the reference videos (they are billed on it)."""
        return sum(f.duration_s or 0.0 for f in self.facts if f.kind == "reference_video_urls")


class _Intake:
    def __init__(
        self, job_id: str, storage: Storage, load: LoadMedia, inspector: MediaInspector
    ) -> None:
        self.job_id = job_id
        self.storage = storage
        self.load = load
        self.inspector = inspector
        self.facts: list[MediaFacts] = []

    def store(self, path: str, url: str) -> str:
        """Load, check and store the media at `path` (`elements[0].video_url`); its key."""
        blob = MediaBlob(field=path, data=self.load(url, path))
        self.facts.append(self.inspector.inspect(blob))
        key = input_key(self.job_id, blob.sha256)
        if not self.storage.exists(key):
            self.storage.put_bytes(key, blob.data)
        return key

    def store_all(self, path: str, urls: list[str]) -> tuple[str, ...]:
        return tuple(self.store(f"{path}[{i}]", url) for i, url in enumerate(urls))

    def element(self, path: str, fields: Mapping[str, Any]) -> Element[str]:
        roles: dict[str, Any] = {}
        for name, value in fields.items():
            where = f"{path}.{name}"
            role = ELEMENT_ROLES.get(name, name)  # an unknown name fails in `store`
            if isinstance(value, list):
                roles[role] = self.store_all(where, value)
            else:
                roles[role] = self.store(where, value)
        return Element(**roles)


def store_media(
    request: VideoRequest,
    entry: ModelEntry,
    *,
    job_id: str,
    storage: Storage,
    load: LoadMedia,
    inspector: MediaInspector,
) -> StoredMedia:
    """Store the request's media under `job_id`, each file decoded and checked first.

    Checks that span files (reference clip lengths) and an upscale's output cap run once all
    are read. On any refusal nothing stays stored.
    """
    intake = _Intake(job_id, storage, load, inspector)
    roles: dict[str, Any] = {}
    source: SourceVideo | None = None
    try:
        for name, value in request.media.items():
            if name in SINGLE_ROLES:
                roles[SINGLE_ROLES[name]] = intake.store(name, value)
            elif name in LIST_ROLES:
                roles[LIST_ROLES[name]] = intake.store_all(name, value)
            else:  # elements
                roles["elements"] = tuple(
                    intake.element(f"{name}[{i}]", e) for i, e in enumerate(value)
                )
        inspector.check_all(intake.facts, source_matched=request.duration_seconds is None)
        for facts in intake.facts:
            if facts.field == "video_url":
                check_upscale_input(entry, request, facts)
                source = source_video(facts)
    except BaseException:
        storage.delete_prefix(job_prefix(job_id))
        raise
    return StoredMedia(
        job_id=job_id, media=Media(**roles), facts=tuple(intake.facts), source=source
    )


def _seed(request: VideoRequest) -> int:
    """The client's seed, else one derived from the request: the same request renders the
    same video."""
    if request.seed is not None:
        return request.seed
    # Where the job's end is announced changes nothing it makes (nor the seeds of before).
    made = {k: v for k, v in request.as_json().items() if k not in ("webhook_url", "seed")}
    text = json.dumps(made, sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _geometry(request: VideoRequest, facts: tuple[MediaFacts, ...]) -> tuple[int, int]:
    aspect = aspect_value(request.aspect_ratio or "")
    if aspect is None:
        shapes = {f.field: f.width / f.height for f in facts if f.width and f.height}
        aspect = next((shapes[field] for field in SHAPE_SOURCES if field in shapes), None)
    return frame_size(request.resolution, aspect or aspect_value(DEFAULT_ASPECT) or 16 / 9)


def job_spec(request: VideoRequest, entry: ModelEntry, stored: StoredMedia) -> JobSpec:
    """Everything the engine will be told, decided now: size, rate, frames, seed, inputs."""
    width, height = _geometry(request, stored.facts)
    # A source-matched duration renders (and bills) as long as the source or references are.
    seconds = output_seconds(request, stored.source, stored.reference_seconds)
    upscale = entry.upscale
    return JobSpec(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        width=width,
        height=height,
        fps=entry.fps,
        frame_count=max(1, round(seconds * entry.fps)),
        duration_s=seconds,
        audio=request.audio,
        seed=_seed(request),
        upscale_factor=(request.upscale_factor or upscale.default_factor) if upscale else None,
        max_output_pixels=upscale.max_output_pixels if upscale else None,
        max_run_seconds=entry.max_run_seconds,
        media=stored.media,
    )
