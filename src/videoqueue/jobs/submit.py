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

from videoqueue.billing.ledger import charge
from videoqueue.catalog.entry import ModelEntry
from videoqueue.catalog.geometry import DEFAULT_ASPECT, aspect_value, frame_size
from videoqueue.catalog.pricing import SourceVideo, price_micros
from videoqueue.catalog.request import VideoRequest
from videoqueue.clock import Clock
from videoqueue.db.base import new_id
from videoqueue.jobs.models import Job
from videoqueue.jobs.store import create_job
from videoqueue.media.intake import IMAGE_FIELDS, MediaBlob, image_size
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


def input_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/inputs/"


def output_key(job_id: str) -> str:
    return f"jobs/{job_id}/output.mp4"


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/"


class _Intake:
    def __init__(self, job_id: str, storage: Storage, load: LoadMedia) -> None:
        self.job_id = job_id
        self.storage = storage
        self.load = load
        self.first_image: tuple[int, int] | None = None

    def store(self, field: str, value: Any, kind: str) -> InputKeys:
        if isinstance(value, list):
            return [self.store(field, item, kind) for item in value]
        if isinstance(value, dict):
            return {k: self.store(k, v, k) for k, v in value.items()}
        blob = MediaBlob(field=field, data=self.load(value, field))
        if kind in IMAGE_FIELDS:
            size = image_size(blob)
            if kind == "image_url":
                self.first_image = size
        key = input_prefix(self.job_id) + blob.sha256
        if not self.storage.exists(key):
            self.storage.put_bytes(key, blob.data)
        return key


def _seed(request: VideoRequest) -> int:
    text = json.dumps(request.as_json(), sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _geometry(request: VideoRequest, first_image: tuple[int, int] | None) -> tuple[int, int]:
    aspect = aspect_value(request.aspect_ratio or "")
    if aspect is None and first_image is not None:
        aspect = first_image[0] / first_image[1]
    return frame_size(request.resolution, aspect or aspect_value(DEFAULT_ASPECT) or 16 / 9)


def prepare_job(request: VideoRequest, entry: ModelEntry, *, storage: Storage,
                load: LoadMedia, source: SourceVideo | None = None) -> PreparedJob:
    """Store the request's media under a new job id and work out its frame size and price."""
    job_id = new_id()
    intake = _Intake(job_id, storage, load)
    try:
        inputs = {field: intake.store(field, value, field) for field, value in request.media.items()}
    except BaseException:
        storage.delete_prefix(job_prefix(job_id))
        raise
    width, height = _geometry(request, intake.first_image)
    params = {
        **request.as_json(),
        "media": {},
        "width": width,
        "height": height,
        "fps": FPS,
        "seed": _seed(request),
        "duration_s": request.duration_seconds or (source.duration_s if source else None),
    }
    return PreparedJob(job_id=job_id, entry=entry, params=params, inputs=inputs,
                       price_micros=price_micros(entry, request, source))


def enqueue(session: Session, prepared: PreparedJob, *, account_id: str, clock: Clock,
            max_attempts: int) -> Job:
    """Create the job and charge its price in the caller's transaction."""
    job = create_job(
        session, job_id=prepared.job_id, account_id=account_id, model=prepared.entry.id,
        engine=prepared.entry.engine, params=prepared.params, inputs=prepared.inputs,
        price_micros=prepared.price_micros, max_attempts=max_attempts, clock=clock,
    )
    charge(session, account_id=account_id, job_id=job.id, model=job.model,
           micros=prepared.price_micros, clock=clock)
    return job
