"""Per-model validation of `/video/queue` and `/video/quote` bodies, as Venice answers it.

Two passes, as Venice's server does: first the body's schema (every issue collected and
answered together as a DetailedError), then the model's own rules, each a plain 400.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from videoqueue.catalog import issues as iss
from videoqueue.catalog.catalog import Catalog
from videoqueue.catalog.entry import MEDIA_FIELDS, Family, ModelEntry
from videoqueue.catalog.issues import BadRequest, InvalidParameters, Issue
from videoqueue.catalog.request import VideoRequest

DURATIONS = (*(f"{n}s" for n in range(1, 31)), "-1", "1 gen", "auto", "Auto")
ASPECT_RATIOS = (
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "9:21", "16:9", "21:9",
    "adaptive", "auto",
)
RESOLUTIONS = (
    "256p", "360p", "480p", "540p", "580p", "720p", "1080p", "1440p", "2160p", "4k", "2x",
    "4x", "2K", "768P", "true_1080p",
)
UPSCALE_FACTORS = (1, 2, 4)
BITRATE_MODES = ("standard", "high")
TASK_TYPES = ("auto", "reference", "edit", "extend")
TASK_TYPE_ALIASES = {"editing": "edit", "extension": "extend"}
SEEDANCE_CONSENTS = (
    "confirmed_terms_and_privacy", "confirmed_legal_right", "confirmed_screening_acknowledged",
)
ARRAY_MAX = {
    "reference_image_urls": 30, "reference_video_urls": 10, "reference_audio_urls": 10,
    "elements": 4, "scene_image_urls": 4,
}
PROMPT_MAX = 20000
DEFAULT_PROMPT_LIMIT = 2500
ELEMENT_KEYS = ("frontal_image_url", "reference_image_urls", "video_url")


def _check_string(body: Mapping[str, Any], key: str, out: list[Issue], *,
                  min_length: int = 0, max_length: int = PROMPT_MAX) -> None:
    if key not in body:
        return
    value = body[key]
    if not isinstance(value, str):
        out.append(iss.wrong_type((key,), "string", value))
    elif len(value) < min_length:
        out.append(iss.too_short((key,), min_length))
    elif len(value) > max_length:
        out.append(iss.too_long((key,), max_length))


def _check_enum(body: Mapping[str, Any], key: str, options: Sequence[object],
                out: list[Issue]) -> None:
    if key not in body:
        return
    value = body[key]
    if isinstance(value, bool) or value not in options:
        out.append(iss.not_in_enum((key,), options, value))


def _check_string_list(body: Mapping[str, Any], key: str, maximum: int,
                       out: list[Issue]) -> None:
    if key not in body:
        return
    value = body[key]
    if not isinstance(value, list):
        out.append(iss.wrong_type((key,), "array", value))
        return
    if len(value) > maximum:
        out.append(iss.too_long((key,), maximum, "array"))
    for i, item in enumerate(value):
        if not isinstance(item, str):
            out.append(iss.wrong_type((key, i), "string", item))


def _check_elements(body: Mapping[str, Any], out: list[Issue]) -> None:
    if "elements" not in body:
        return
    value = body["elements"]
    if not isinstance(value, list):
        out.append(iss.wrong_type(("elements",), "array", value))
        return
    if len(value) > ARRAY_MAX["elements"]:
        out.append(iss.too_long(("elements",), ARRAY_MAX["elements"], "array"))
    for i, element in enumerate(value):
        path = ("elements", i)
        if not isinstance(element, dict):
            out.append(iss.wrong_type(path, "object", element))
            continue
        if "frontal_image_url" not in element:
            out.append(iss.required((*path, "frontal_image_url"), "string"))
        elif not isinstance(element["frontal_image_url"], str):
            out.append(iss.wrong_type((*path, "frontal_image_url"), "string",
                                      element["frontal_image_url"]))
        if "video_url" in element and not isinstance(element["video_url"], str):
            out.append(iss.wrong_type((*path, "video_url"), "string", element["video_url"]))
        refs = element.get("reference_image_urls")
        if refs is not None:
            if not isinstance(refs, list):
                out.append(iss.wrong_type((*path, "reference_image_urls"), "array", refs))
            elif len(refs) > 3:
                out.append(iss.too_long((*path, "reference_image_urls"), 3, "array"))
            elif not all(isinstance(r, str) for r in refs):
                out.append(iss.custom((*path, "reference_image_urls"),
                                      "Each reference image must be a string"))


def _check_consents(body: Mapping[str, Any], out: list[Issue]) -> None:
    if "consents" not in body:
        return
    consents = body["consents"]
    if not isinstance(consents, dict):
        out.append(iss.wrong_type(("consents",), "object", consents))
        return
    extra = [k for k in consents if k != "seedance"]
    if extra:
        out.append(iss.unrecognized_keys(("consents",), extra))
    if "seedance" not in consents:
        return
    seedance = consents["seedance"]
    path = ("consents", "seedance")
    if not isinstance(seedance, dict):
        out.append(iss.wrong_type(path, "object", seedance))
        return
    for flag in SEEDANCE_CONSENTS:
        if flag not in seedance:
            out.append(iss.required((*path, flag), "true"))
        elif seedance[flag] is not True:
            out.append(Issue("invalid_literal", (*path, flag), "Invalid literal value, expected true",
                             {"expected": True, "received": seedance[flag]}))
    unknown = [k for k in seedance if k not in SEEDANCE_CONSENTS]
    if unknown:
        out.append(iss.unrecognized_keys(path, unknown))


def schema_issues(body: Mapping[str, Any], entry: ModelEntry, family: Family, *,
                  for_quote: bool) -> list[Issue]:
    """Every type, enum and length issue of `body` against `entry`, Zod-style."""
    out: list[Issue] = []
    c = entry.constraints
    durations = (*c.durations, *family.source_matched_durations)
    takes_prompt = c.durations != ("Auto",) and not for_quote
    if takes_prompt and "prompt" not in body:
        out.append(iss.required(("prompt",), "string"))
    limit = c.prompt_character_limit or DEFAULT_PROMPT_LIMIT
    _check_string(body, "prompt", out, min_length=1 if takes_prompt else 0, max_length=limit)
    _check_string(body, "negative_prompt", out, max_length=limit)
    if "duration" not in body:
        if c.durations != ("Auto",):
            out.append(iss.required(("duration",), iss.quoted_options(durations)))
    elif isinstance(body["duration"], str) and body["duration"] in DURATIONS:
        if body["duration"] not in durations and c.durations != ("Auto",):
            out.append(iss.not_in_enum(("duration",), durations, body["duration"]))
    elif not (for_quote and c.durations == ("Auto",)):
        out.append(iss.not_in_enum(("duration",), durations or DURATIONS, body["duration"]))
    aspect_ratios = (*c.aspect_ratios, *family.source_matched_aspect_ratios)
    if "aspect_ratio" in body and (aspect_ratios or not for_quote):
        _check_enum(body, "aspect_ratio", aspect_ratios or ASPECT_RATIOS, out)
    if "resolution" in body and c.resolutions:
        _check_enum(body, "resolution", c.resolutions, out)
    _check_enum(body, "upscale_factor", UPSCALE_FACTORS, out)
    if "audio" in body and not isinstance(body["audio"], bool):
        out.append(iss.wrong_type(("audio",), "boolean", body["audio"]))
    if for_quote:
        return out
    for key in ("image_url", "end_image_url", "audio_url", "video_url"):
        _check_string(body, key, out, max_length=1 << 62)
    for key, maximum in ARRAY_MAX.items():
        if key != "elements":
            _check_string_list(body, key, maximum, out)
    _check_elements(body, out)
    _check_consents(body, out)
    _check_enum(body, "bitrate_mode", BITRATE_MODES, out)
    if "omni_reference_task_type" in body:
        raw = body["omni_reference_task_type"]
        value = TASK_TYPE_ALIASES.get(raw, raw) if isinstance(raw, str) else raw
        _check_enum({"omni_reference_task_type": value}, "omni_reference_task_type",
                    TASK_TYPES, out)
    return out


def _present_media(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in MEDIA_FIELDS if body.get(k) not in (None, [], "")}


def model_rules(body: Mapping[str, Any], entry: ModelEntry, family: Family, *,
                for_quote: bool) -> None:
    """The model's own rules; the first broken one raises `BadRequest` with Venice's text."""
    c = entry.constraints
    is_upscale = entry.price.rule == "upscale"
    if "resolution" in body and is_upscale:
        raise BadRequest("Use upscale_factor instead of resolution")
    if "upscale_factor" in body and not is_upscale:
        raise BadRequest("This model does not support upscale_factor")
    if for_quote:
        return
    if "resolution" in body and not c.resolutions:
        raise BadRequest("This model does not support resolution")
    if "aspect_ratio" in body and not (c.aspect_ratios or family.source_matched_aspect_ratios):
        raise BadRequest("This model does not support aspect_ratio")
    if "audio" in body and not c.audio_configurable and body["audio"] != c.audio:
        state = "always has" if c.audio else "has no"
        raise BadRequest(f"This model does not support the audio setting: its output {state} audio")
    if "bitrate_mode" in body and not family.bitrate_mode:
        raise BadRequest("This model does not support bitrate_mode")
    if "omni_reference_task_type" in body and not family.omni_reference_task_type:
        raise BadRequest("This model does not support omni_reference_task_type")
    media = _present_media(body)
    allowed = set(entry.requires) | set(entry.accepts)
    for key in media:
        if key not in allowed:
            raise BadRequest(f"This model does not support {key}")


def _check_required_media(entry: ModelEntry, media: Mapping[str, Any]) -> None:
    for need in entry.requires:
        if need == "reference":
            if not (media.get("reference_image_urls") or media.get("reference_video_urls")):
                raise BadRequest("At least one reference is required for this model")
        elif need == "visual":
            if not any(media.get(k) for k in ("image_url", "elements", "scene_image_urls")):
                raise BadRequest(
                    "At least one visual input (image_url, elements or scene_image_urls) "
                    "is required for this model"
                )
        elif need not in media:
            raise InvalidParameters([iss.required((need,), "string")])


def _check_family_counts(family: Family, media: Mapping[str, Any]) -> None:
    images = media.get("reference_image_urls", [])
    if images and family.reference_images_max and len(images) > family.reference_images_max:
        raise InvalidParameters(
            [iss.too_long(("reference_image_urls",), family.reference_images_max, "array")]
        )
    if family.reference_images_min and images and len(images) < family.reference_images_min:
        raise InvalidParameters(
            [iss.too_short(("reference_image_urls",), family.reference_images_min, "array")]
        )
    for key, limit in (("reference_video_urls", family.reference_videos),
                       ("reference_audio_urls", family.reference_audios)):
        items = media.get(key, [])
        if items and limit is not None and len(items) > limit.max_items:
            raise InvalidParameters([iss.too_long((key,), limit.max_items, "array")])
    if media.get("reference_audio_urls") and not (
        images or media.get("reference_video_urls")
    ):
        raise BadRequest(
            "reference_audio_urls must be paired with at least one reference image or "
            "reference video"
        )
    if family.max_visual_inputs is not None:
        elements = media.get("elements", [])
        frames = sum(1 for k in ("image_url", "end_image_url") if k in media)
        total = frames + len(elements) + len(media.get("scene_image_urls", []))
        if total > family.max_visual_inputs or (frames and len(elements) > 3):
            raise BadRequest("Number of images exceeds the limit")


def _check_source_matching(body: Mapping[str, Any], family: Family,
                           media: Mapping[str, Any]) -> None:
    matched = (
        body.get("duration") in family.source_matched_durations
        or body.get("aspect_ratio") in family.source_matched_aspect_ratios
    )
    if matched and not media.get("reference_video_urls"):
        raise BadRequest(
            "A duration or aspect_ratio matched to the source requires reference_video_urls"
        )


_TAG = re.compile(r"@(Element|Image)(\d+)")


def _check_prompt_references(prompt: object, entry: ModelEntry, family: Family,
                             media: Mapping[str, Any]) -> None:
    if not isinstance(prompt, str):
        return
    counts = {
        "Element": len(media.get("elements", [])) if family.elements else None,
        "Image": (
            len(media.get("scene_image_urls", [])) if family.scene_images
            else len(media.get("reference_image_urls", [])) if family.reference_images_max
            else None
        ),
    }
    for kind, number in _TAG.findall(prompt):
        supplied = counts[kind]
        if supplied is None:
            continue
        if not 1 <= int(number) <= supplied:
            source = {"Element": "elements", "Image": (
                "scene_image_urls" if family.scene_images else "reference_image_urls")}[kind]
            raise BadRequest(
                f"The prompt refers to @{kind}{number}, but only {supplied} {source} "
                f"item(s) were supplied"
            )


def _model_of(catalog: Catalog, body: Mapping[str, Any]) -> ModelEntry:
    if "model" not in body:
        raise BadRequest("model is required")
    if not isinstance(body["model"], str):
        raise BadRequest("model must be a string")
    return catalog.get(body["model"])


def _build(body: Mapping[str, Any], entry: ModelEntry, for_quote: bool) -> VideoRequest:
    c = entry.constraints
    audio = body.get("audio", True) if c.audio_configurable else c.audio
    task = body.get("omni_reference_task_type")
    options = {k: body[k] for k in ("bitrate_mode", "consents") if k in body}
    if task is not None:
        options["omni_reference_task_type"] = TASK_TYPE_ALIASES.get(task, task)
    is_upscale = entry.price.rule == "upscale"
    duration = body.get("duration", "Auto")
    return VideoRequest(
        model=entry.id,
        prompt="" if is_upscale else body.get("prompt", ""),
        negative_prompt=body.get("negative_prompt", ""),
        duration="Auto" if c.durations == ("Auto",) else duration,
        resolution=None if is_upscale else body.get("resolution") or default_resolution(entry),
        aspect_ratio=body.get("aspect_ratio"),
        audio=bool(audio),
        upscale_factor=body.get("upscale_factor", 2) if is_upscale else None,
        media={} if for_quote else _present_media(body),
        options=options,
        reference_video_total_duration=_number(body.get("reference_video_total_duration")),
        input_height=_int(body.get("input_height")),
    )


def _number(value: object) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return float(value) if ok else None  # type: ignore[arg-type]


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def default_resolution(entry: ModelEntry) -> str | None:
    """The model's resolution when the request names none."""
    listed = entry.constraints.resolutions
    if entry.default_resolution:
        return entry.default_resolution
    if not listed:
        return None
    return "720p" if "720p" in listed else listed[-1]


def _validate(catalog: Catalog, body: Mapping[str, Any], for_quote: bool) -> VideoRequest:
    entry = _model_of(catalog, body)
    family = catalog.family(entry)
    model_rules(body, entry, family, for_quote=for_quote)
    found = schema_issues(body, entry, family, for_quote=for_quote)
    if found:
        raise InvalidParameters(found)
    if not for_quote:
        model_rules_after_schema(body, entry, family)
    return _build(body, entry, for_quote)


def model_rules_after_schema(body: Mapping[str, Any], entry: ModelEntry,
                             family: Family) -> None:
    """Rules that need well-typed values (counts, references), checked after the schema."""
    media = _present_media(body)
    _check_required_media(entry, media)
    _check_family_counts(family, media)
    _check_source_matching(body, family, media)
    _check_prompt_references(body.get("prompt", ""), entry, family, media)


def validate_queue(catalog: Catalog, body: Mapping[str, Any]) -> VideoRequest:
    """The `/video/queue` body as a `VideoRequest`, or `BadRequest`/`InvalidParameters`."""
    return _validate(catalog, body, for_quote=False)


def validate_quote(catalog: Catalog, body: Mapping[str, Any]) -> VideoRequest:
    """The `/video/quote` body as a `VideoRequest` (pricing fields only)."""
    return _validate(catalog, body, for_quote=True)
