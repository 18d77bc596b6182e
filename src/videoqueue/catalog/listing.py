"""`GET /models?type=video` entries, in Venice's wire shape."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from videoqueue.catalog import issues as iss
from videoqueue.catalog.catalog import Catalog
from videoqueue.catalog.entry import MEDIA_FIELDS, REQUIREMENTS, ModelEntry
from videoqueue.catalog.issues import InvalidParameters

# The `type` query parameter of Venice's `GET /models`: a union of two enums.
MODEL_TYPES = ("asr", "embedding", "image", "music", "text", "tts", "upscale", "inpaint", "video")
META_TYPES = ("all", "code")

PREVIEW_NOTE = (
    "Served by videoqueue's preview engine: a fast deterministic stand-in that renders the "
    "prompt, not a generative model."
)


def media_inputs(entry: ModelEntry) -> dict[str, list[Any]]:
    """The media fields a request for the model may carry (in the request schema's order), and
    what it must carry: each list in `required` needs at least one of its fields."""
    fields = [f for f in MEDIA_FIELDS if f in entry.requires or f in entry.accepts]
    required = [
        [f for f in REQUIREMENTS[need][0] if f in fields] if need in REQUIREMENTS else [need]
        for need in entry.requires
    ]
    return {"fields": fields, "required": required}


def model_entry(entry: ModelEntry, ready_engines: Collection[str]) -> dict[str, Any]:
    """One model as Venice lists it, plus a `videoqueue` block: the engine that serves it, how
    it delivers, the media it takes (`media`), an upscaler's factors (`upscale`), and for a
    silent model how `audio: true` is answered (`audio_request`). `offline` when the catalogue
    says so or when its engine is not in `ready_engines` (no live worker could run its job
    now)."""
    constraints = entry.constraints.model_dump(exclude_none=True)
    spec: dict[str, Any] = {
        "name": entry.name,
        "privacy": entry.privacy,
        "offline": entry.offline or entry.engine not in ready_engines,
        "traits": list(entry.traits),
        "constraints": constraints,
        "model_sets": list(entry.model_sets),
    }
    if entry.uncensored:
        spec["uncensored"] = True
    if entry.beta:
        spec["betaModel"] = True
    if entry.deprecation is not None:
        deprecation = entry.deprecation.model_dump(exclude_none=True)
        deprecation.setdefault("removesAt", entry.deprecation.date)  # required on the wire
        spec["deprecation"] = deprecation
    description = entry.description or (PREVIEW_NOTE if entry.engine == "preview" else None)
    if description:
        spec["description"] = description
    spec["videoqueue"] = {
        "engine": entry.engine,
        "delivery": entry.delivery,
        "media": media_inputs(entry),
    }
    if entry.upscale is not None:
        spec["videoqueue"]["upscale"] = {
            "factors": list(entry.upscale.factors),
            "default_factor": entry.upscale.default_factor,
        }
    if not entry.constraints.audio:
        spec["videoqueue"]["audio_request"] = entry.audio_request
    return {
        "id": entry.id,
        "object": "model",
        "created": entry.created,
        "owned_by": "venice.ai",
        "type": "video",
        "model_spec": spec,
    }


def model_list(
    catalog: Catalog, model_type: str, now: datetime, ready_engines: Collection[str]
) -> dict[str, Any]:
    """The `GET /models?type=…` body at `now`, with `ready_engines` those the fleet can run
    (`model_entry`); every model here is a video model, and one past its deprecation's
    `removesAt` is no longer listed.

    A `type` outside Venice's union of enums is a DetailedError with Zod's `invalid_union`.
    """
    if model_type not in (*MODEL_TYPES, *META_TYPES):
        raise InvalidParameters(
            [
                iss.invalid_union(
                    ("type",),
                    [
                        [iss.not_in_enum(("type",), MODEL_TYPES, model_type)],
                        [iss.not_in_enum(("type",), META_TYPES, model_type)],
                    ],
                )
            ]
        )
    listed = model_type in ("video", "all")
    data = [model_entry(m, ready_engines) for m in catalog.listed(now)] if listed else []
    return {"object": "list", "type": model_type, "data": data}
