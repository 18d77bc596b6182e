"""Per-model validation of `/video/queue` and `/video/quote` bodies, as Venice answers them.

Every check runs before any charge, in this order (the first step that fails answers):

1. `model`: present, a string, a known id not yet removed — plain 400s
   (`"model is required"`, `"Invalid model specified"`).
2. Fields the model does not take — a plain 400 for the first one, in schema order
   (`"Use upscale_factor instead of resolution"`, `"This model does not support aspect_ratio"`;
   `audio: true` on a silent model whose entry says `audio_request = "refuse"`).
3. The model's schema — one DetailedError listing every issue (types, the model's enums with
   `expected` lists, required fields, prompt and array limits, `consents`).
4. Refinements across well-formed fields — a DetailedError (reference audio needs an image
   or video reference).
5. The model's rules across fields — a plain 400 for the first broken one (at least one
   reference, Kling's image counts, source-matched values, `@Element`/`@Image` tags).

A quote checks only its pricing fields and tolerates any other key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from videoqueue.catalog import schema
from videoqueue.catalog.catalog import Catalog
from videoqueue.catalog.entry import MEDIA_FIELDS, REQUIREMENTS, Family, ModelEntry
from videoqueue.catalog.issues import BadRequest, InvalidParameters
from videoqueue.catalog.request import VideoRequest
from videoqueue.catalog.schema import TASK_TYPE_ALIASES, present

FRAMES = ("image_url", "end_image_url")
UNSERVED_FIELDS = ("reference_document_urls", "keyframes")
"""Fields of Venice's schema that no model here takes (Wan 3.0 documents, keyframe models)."""


def requested_model(catalog: Catalog, body: Mapping[str, Any], *, now: datetime) -> ModelEntry:
    """The model a body names, or the plain 400 Venice gives when it names none it offers
    at `now` (a model past its `removesAt` is as unknown as a made-up one)."""
    if "model" not in body:
        raise BadRequest("model is required")
    if not isinstance(body["model"], str):
        raise BadRequest("model must be a string")
    return catalog.get(body["model"], now)


def _refuse_resolution_on_upscale(body: Mapping[str, Any], entry: ModelEntry) -> None:
    if "resolution" in body and entry.upscale is not None:
        raise BadRequest("Use upscale_factor instead of resolution")


def _refuse_unsupported(body: Mapping[str, Any], entry: ModelEntry, family: Family) -> None:
    c = entry.constraints
    _refuse_resolution_on_upscale(body, entry)
    checks = (
        ("aspect_ratio", bool(schema.aspect_ratios(entry, family))),
        ("omni_reference_task_type", family.omni_reference_task_type),
        ("resolution", bool(c.resolutions)),
        ("upscale_factor", entry.upscale is not None),
    )
    for key, supported in checks:
        if key in body and not supported:
            raise BadRequest(f"This model does not support {key}")
    allowed = set(entry.requires) | set(entry.accepts)
    for key in (*MEDIA_FIELDS, *UNSERVED_FIELDS):
        if present(body, key) and key not in allowed:
            raise BadRequest(f"This model does not support {key}")
    if "bitrate_mode" in body and not family.bitrate_mode:
        raise BadRequest("This model does not support bitrate_mode")
    if body.get("audio") is True and not c.audio and entry.audio_request == "refuse":
        raise BadRequest("This model does not support audio")


def _check_requirements(entry: ModelEntry, body: Mapping[str, Any]) -> None:
    for need in entry.requires:
        if need in REQUIREMENTS:
            fields, message = REQUIREMENTS[need]
            if not any(present(body, key) for key in fields):
                raise BadRequest(message)


def _check_visual_counts(family: Family, body: Mapping[str, Any]) -> None:
    frames = sum(1 for key in FRAMES if present(body, key))
    elements = len(body.get("elements") or [])
    total = frames + elements + len(body.get("scene_image_urls") or [])
    too_many = family.max_visual_inputs is not None and total > family.max_visual_inputs
    limit = family.elements_max_with_frame
    if too_many or (frames and limit is not None and elements > limit):
        raise BadRequest("Number of images exceeds the limit")


def _check_source_matching(body: Mapping[str, Any], family: Family, *, for_quote: bool) -> None:
    for key, matched in (
        ("duration", family.source_matched_durations),
        ("aspect_ratio", family.source_matched_aspect_ratios),
    ):
        value = body.get(key)
        if value not in matched:
            continue
        if for_quote and "reference_video_total_duration" not in body:
            raise BadRequest(
                f"{key} '{value}' follows the source clip: quote it with "
                "reference_video_total_duration"
            )
        if not for_quote and not present(body, "reference_video_urls"):
            raise BadRequest(
                f"{key} '{value}' follows the source clip: it needs reference_video_urls"
            )


def _check_prompt_references(body: Mapping[str, Any], family: Family) -> None:
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        return
    for tag, key in family.prompt_references.items():
        supplied = len(body.get(key) or [])
        for number in re.findall(re.escape(tag) + r"(\d+)", prompt):
            if not 1 <= int(number) <= supplied:
                raise BadRequest(
                    f"The prompt refers to {tag}{number}, but {key} has {supplied} item(s)"
                )


def _check_upscale_quote(body: Mapping[str, Any], entry: ModelEntry) -> None:
    if entry.upscale is None or present(body, "video_url"):
        return
    if schema.upscale_seconds(body.get("duration")) is None:
        raise BadRequest(
            'Quote an upscale with video_url, or give its duration in seconds ("10" or "10s")'
        )


def default_resolution(entry: ModelEntry) -> str | None:
    """The model's resolution when the request names none."""
    listed = entry.constraints.resolutions
    if entry.default_resolution:
        return entry.default_resolution
    if not listed or entry.upscale is not None:
        return None
    return "720p" if "720p" in listed else listed[-1]


def _duration(body: Mapping[str, Any], entry: ModelEntry, *, for_quote: bool) -> str:
    if entry.upscale is not None:
        seconds = schema.upscale_seconds(body.get("duration")) if for_quote else None
        return "Auto" if seconds is None else f"{seconds:g}s"
    return str(body["duration"])


def _build(body: Mapping[str, Any], entry: ModelEntry, *, for_quote: bool) -> VideoRequest:
    c = entry.constraints
    audio = body.get("audio", True) if c.audio_configurable else c.audio
    options = {k: body[k] for k in ("bitrate_mode", "consents") if k in body}
    task = body.get("omni_reference_task_type")
    if isinstance(task, str):
        options["omni_reference_task_type"] = TASK_TYPE_ALIASES.get(task, task)
    reference_total = body.get("reference_video_total_duration") if for_quote else None
    upscale = entry.upscale
    return VideoRequest(
        model=entry.id,
        prompt="" if upscale or for_quote else body["prompt"],
        negative_prompt="" if upscale or for_quote else body.get("negative_prompt", ""),
        duration=_duration(body, entry, for_quote=for_quote),
        resolution=None if upscale else body.get("resolution") or default_resolution(entry),
        aspect_ratio=body.get("aspect_ratio"),
        audio=bool(audio),
        upscale_factor=body.get("upscale_factor", upscale.default_factor) if upscale else None,
        media={} if for_quote else {k: body[k] for k in MEDIA_FIELDS if present(body, k)},
        options={} if for_quote else options,
        reference_video_total_duration=(
            None if reference_total is None else float(reference_total)
        ),
        input_height=(
            int(body["input_height"]) if for_quote and upscale and "input_height" in body else None
        ),
        webhook_url=None if for_quote else body.get("webhook_url"),
        seed=None if for_quote or body.get("seed") is None else int(body["seed"]),
    )


def validate_queue(catalog: Catalog, body: Mapping[str, Any], *, now: datetime) -> VideoRequest:
    """The `/video/queue` body as a `VideoRequest`, or `BadRequest`/`InvalidParameters`."""
    entry = requested_model(catalog, body, now=now)
    family = catalog.family(entry)
    _refuse_unsupported(body, entry, family)
    for issues in (
        schema.queue_issues(body, entry, family),
        schema.refinement_issues(body, family),
    ):
        if issues:
            raise InvalidParameters(issues)
    _check_requirements(entry, body)
    _check_visual_counts(family, body)
    _check_source_matching(body, family, for_quote=False)
    _check_prompt_references(body, family)
    return _build(body, entry, for_quote=False)


def validate_quote(catalog: Catalog, body: Mapping[str, Any], *, now: datetime) -> VideoRequest:
    """The `/video/quote` body as a `VideoRequest` holding only what prices it."""
    entry = requested_model(catalog, body, now=now)
    family = catalog.family(entry)
    _refuse_resolution_on_upscale(body, entry)
    issues = schema.quote_issues(body, entry, family)
    if issues:
        raise InvalidParameters(issues)
    _check_source_matching(body, family, for_quote=True)
    _check_upscale_quote(body, entry)
    return _build(body, entry, for_quote=True)
