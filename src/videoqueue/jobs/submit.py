"""Accepting a validated request: store its media, size its frames, price it, charge, enqueue.

Media is read and stored before the database transaction (no lock is held while a URL is
fetched); the charge and the job row are then written together, or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from videoqueue.billing.ledger import KeyBudget, charge
from videoqueue.catalog.entry import ModelEntry
from videoqueue.catalog.geometry import DEFAULT_ASPECT, aspect_value, frame_size
from videoqueue.catalog.pricing import SourceVideo, output_seconds, price_micros
from videoqueue.catalog.request import VideoRequest
from videoqueue.clock import Clock
from videoqueue.db.base import new_id
from videoqueue.engines.upscale_size import DEFAULT_MAX_OUTPUT_PIXELS, ensure_within_cap
from videoqueue.jobs.models import Job
from videoqueue.jobs.store import create_job
from videoqueue.media.checks import MediaFacts, MediaInspector
from videoqueue.media.intake import MediaBlob
from videoqueue.storage.base import Storage

FPS = 24
LoadMedia = Callable[[str, str], bytes]
"""(url, field name) → the bytes behind a media URL; raises a 4xx error when it cannot."""

InputKeys = str | list[Any] | dict[str, Any]


@dataclass(frozen=True)
class PreparedJob:
    """A request whose media is stored and whose price is known, ready to enqueue."""

    job_id: str
    entry: ModelEntry
    params: dict[str, Any]
    inputs: dict[str, Any]
    price_micros: int
    media: tuple[MediaFacts, ...] = ()
    """What decoding each media file found (for the face-consent decision)."""


def input_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/inputs/"


def output_key(job_id: str) -> str:
    return f"jobs/{job_id}/output.mp4"


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/"


class _Intake:
    def __init__(
        self, job_id: str, storage: Storage, load: LoadMedia, inspector: MediaInspector
    ) -> None:
        self.job_id = job_id
        self.storage = storage
        self.load = load
        self.inspector = inspector
        self.media: list[MediaFacts] = []

    def store(self, field: str, value: Any) -> InputKeys:
        """Load, check and store the media at `field` (a path: `elements[0].video_url`)."""
        if isinstance(value, list):
            return [self.store(f"{field}[{i}]", item) for i, item in enumerate(value)]
        if isinstance(value, dict):
            return {k: self.store(f"{field}.{k}", v) for k, v in value.items()}
        blob = MediaBlob(field=field, data=self.load(value, field))
        facts = self.inspector.inspect(blob)
        self.media.append(facts)
        key = input_prefix(self.job_id) + blob.sha256
        if not self.storage.exists(key):
            self.storage.put_bytes(key, blob.data)
        return key


def _seed(request: VideoRequest) -> int:
    text = json.dumps(request.as_json(), sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


# Without an aspect_ratio (or with `auto`/`adaptive`), the output takes the shape of the first
# of these inputs that the request has: the first frame, the input video, the source clip.
SHAPE_SOURCES = ("image_url", "video_url", "reference_video_urls[0]")


def _geometry(request: VideoRequest, media: list[MediaFacts]) -> tuple[int, int]:
    aspect = aspect_value(request.aspect_ratio or "")
    if aspect is None:
        shapes = {f.field: f.width / f.height for f in media if f.width and f.height}
        aspect = next((shapes[field] for field in SHAPE_SOURCES if field in shapes), None)
    return frame_size(request.resolution, aspect or aspect_value(DEFAULT_ASPECT) or 16 / 9)


def source_video(facts: MediaFacts) -> SourceVideo:
    """The probed `video_url` as pricing sees it."""
    return SourceVideo(
        duration_s=facts.duration_s or 0.0, height=facts.height or 0, fps=facts.fps or 0.0
    )


def check_upscale_input(entry: ModelEntry, request: VideoRequest, facts: MediaFacts) -> None:
    """Refuse (400) an upscale whose output would exceed the maximum size, before any charge."""
    if entry.upscale is None or not (facts.width and facts.height):
        return
    factor = request.upscale_factor or entry.upscale.default_factor
    ensure_within_cap(facts.width, facts.height, factor, DEFAULT_MAX_OUTPUT_PIXELS)


def prepare_job(
    request: VideoRequest,
    entry: ModelEntry,
    *,
    storage: Storage,
    load: LoadMedia,
    inspector: MediaInspector,
) -> PreparedJob:
    """Store the request's media under a new job id and work out its frame size and price.

    Each file is decoded and checked by `inspector` (format, size, length, faces) first; an
    input video is priced (and, for upscales, size-capped) from what its probe found.
    """
    job_id = new_id()
    intake = _Intake(job_id, storage, load, inspector)
    source: SourceVideo | None = None
    try:
        inputs = {field: intake.store(field, value) for field, value in request.media.items()}
        inspector.check_all(intake.media, source_matched=request.duration_seconds is None)
        for facts in intake.media:
            if facts.field == "video_url":
                check_upscale_input(entry, request, facts)
                source = source_video(facts)
    except BaseException:
        storage.delete_prefix(job_prefix(job_id))
        raise
    width, height = _geometry(request, intake.media)
    # Reference videos are billed on their probed length, as the quote's declared total is;
    # a source-matched duration renders (and bills) as long as they are.
    reference_seconds = sum(
        f.duration_s or 0.0 for f in intake.media if f.kind == "reference_video_urls"
    )
    params = {
        **request.as_json(),
        "media": {},
        "width": width,
        "height": height,
        "fps": FPS,
        "seed": _seed(request),
        "duration_s": output_seconds(request, source, reference_seconds),
    }
    return PreparedJob(
        job_id=job_id,
        entry=entry,
        params=params,
        inputs=inputs,
        price_micros=price_micros(entry, request, source, reference_seconds),
        media=tuple(intake.media),
    )


def enqueue(
    session: Session,
    prepared: PreparedJob,
    *,
    account_id: str,
    clock: Clock,
    max_attempts: int,
    key: KeyBudget | None = None,
) -> Job:
    """Charge the job's price (to `key`'s spend, when given) and create it, in the caller's
    transaction."""
    # Charge first: it locks the account row before the job's foreign key takes a share lock
    # on it, so two queue requests of one account cannot deadlock on PostgreSQL.
    charge(
        session,
        account_id=account_id,
        job_id=prepared.job_id,
        model=prepared.entry.id,
        micros=prepared.price_micros,
        clock=clock,
        key=key,
    )
    return create_job(
        session,
        job_id=prepared.job_id,
        account_id=account_id,
        model=prepared.entry.id,
        engine=prepared.entry.engine,
        params=prepared.params,
        inputs=prepared.inputs,
        price_micros=prepared.price_micros,
        max_attempts=max_attempts,
        clock=clock,
    )
