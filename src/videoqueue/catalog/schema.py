"""The request schema of `/video/queue` and `/video/quote`, specialised to one model.

Venice checks a body against a Zod schema whose enums and limits are the model's own; every
issue is collected and answered together as one DetailedError. The checks here walk the fields
in the order of Venice's OpenAPI request schema, so issues come out in Zod's order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from videoqueue.catalog import issues as iss
from videoqueue.catalog.entry import Family, ModelEntry
from videoqueue.catalog.issues import Issue, Path

DURATIONS = (*(f"{n}s" for n in range(1, 31)), "-1", "1 gen", "auto", "Auto")
ASPECT_RATIOS = (
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
    "9:16",
    "9:21",
    "16:9",
    "21:9",
    "adaptive",
    "auto",
)
RESOLUTIONS = (
    "256p",
    "360p",
    "480p",
    "540p",
    "580p",
    "720p",
    "1080p",
    "1440p",
    "2160p",
    "4k",
    "2x",
    "4x",
    "2K",
    "768P",
    "true_1080p",
)
UPSCALE_FACTORS = (1, 2, 4)
BITRATE_MODES = ("standard", "high")
TASK_TYPES = ("auto", "reference", "edit", "extend")
TASK_TYPE_ALIASES = {"editing": "edit", "extension": "extend"}
SEEDANCE_CONSENTS = (
    "confirmed_terms_and_privacy",
    "confirmed_legal_right",
    "confirmed_screening_acknowledged",
)
PROMPT_MAX = 20000
# maxItems of Venice's request schema, for every model; a family may only lower them.
ARRAY_MAX = {
    "reference_image_urls": 30,
    "reference_video_urls": 10,
    "reference_audio_urls": 10,
    "reference_document_urls": 1,
    "elements": 4,
    "scene_image_urls": 4,
    "keyframes": 10,
}
ELEMENT_REFERENCE_IMAGES_MAX = 3
REFERENCE_VIDEO_TOTAL_MAX = 150
"""The most seconds `reference_video_total_duration` may give on a quote, for every model."""
WEBHOOK_URL_MAX_LENGTH = 2048
SEED_MAX = 2**32 - 1
"""A seed is 32 bits: what every engine's generator takes."""
URL_FIELDS = ("image_url", "end_image_url", "audio_url", "video_url")
# An upscale duration is read from the file; a quote may give it as seconds ("10", "10s").
UPSCALE_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)s?$")


def durations(entry: ModelEntry, family: Family) -> tuple[str, ...]:
    """The `duration` values the model takes, source-matched ones included."""
    return (*entry.constraints.durations, *family.source_matched_durations)


def aspect_ratios(entry: ModelEntry, family: Family) -> tuple[str, ...]:
    """The `aspect_ratio` values the model takes; empty when it takes none."""
    listed = entry.constraints.aspect_ratios
    return (*listed, *family.source_matched_aspect_ratios) if listed else ()


def array_max(key: str, family: Family) -> int:
    caps = {
        "reference_image_urls": family.reference_images_max,
        "reference_video_urls": family.reference_videos and family.reference_videos.max_items,
        "reference_audio_urls": family.reference_audios and family.reference_audios.max_items,
        "elements": family.elements_max,
        "scene_image_urls": family.scene_images_max,
    }
    cap = caps.get(key)
    return min(ARRAY_MAX[key], cap) if cap else ARRAY_MAX[key]


def reference_video_total_max(family: Family) -> float:
    """The most reference-video seconds a quote may give: 150, or the family's lower cap."""
    limit = family.reference_videos
    if limit is None:
        return REFERENCE_VIDEO_TOTAL_MAX
    return min(REFERENCE_VIDEO_TOTAL_MAX, limit.total_seconds)


def upscale_seconds(value: object) -> float | None:
    """`"10"` or `"10s"` → 10.0; anything else → None."""
    match = UPSCALE_SECONDS.match(value) if isinstance(value, str) else None
    return float(match.group(1)) if match else None


def _string(
    body: Mapping[str, Any],
    key: str,
    out: list[Issue],
    *,
    path: Path | None = None,
    min_length: int = 0,
    max_length: int | None = None,
) -> None:
    value = body[key]
    where = path or (key,)
    if not isinstance(value, str):
        out.append(iss.wrong_type(where, "string", value))
    elif len(value) < min_length:
        out.append(iss.too_short(where, min_length))
    elif max_length is not None and len(value) > max_length:
        out.append(iss.too_long(where, max_length))


def _enum(body: Mapping[str, Any], key: str, options: Sequence[object], out: list[Issue]) -> None:
    value = body[key]
    if isinstance(value, bool) or value not in options:
        out.append(iss.not_in_enum((key,), options, value))


def _string_list(value: object, path: Path, maximum: int, out: list[Issue]) -> None:
    if not isinstance(value, list):
        out.append(iss.wrong_type(path, "array", value))
        return
    if len(value) > maximum:
        out.append(iss.too_long(path, maximum, "array"))
    for i, item in enumerate(value):
        if not isinstance(item, str):
            out.append(iss.wrong_type((*path, i), "string", item))


def _element(element: object, path: Path, out: list[Issue]) -> None:
    if not isinstance(element, dict):
        out.append(iss.wrong_type(path, "object", element))
        return
    if "frontal_image_url" not in element:
        out.append(iss.required((*path, "frontal_image_url"), "string"))
    else:
        _string(element, "frontal_image_url", out, path=(*path, "frontal_image_url"))
    if "reference_image_urls" in element:
        _string_list(
            element["reference_image_urls"],
            (*path, "reference_image_urls"),
            ELEMENT_REFERENCE_IMAGES_MAX,
            out,
        )
    if "video_url" in element:
        _string(element, "video_url", out, path=(*path, "video_url"))


def _consents(value: object, out: list[Issue]) -> None:
    """`consents`: only `seedance`, whose three flags are each literally `true`."""
    if not isinstance(value, dict):
        out.append(iss.wrong_type(("consents",), "object", value))
        return
    if "seedance" in value:
        seedance = value["seedance"]
        path: Path = ("consents", "seedance")
        if not isinstance(seedance, dict):
            out.append(iss.wrong_type(path, "object", seedance))
        else:
            for flag in SEEDANCE_CONSENTS:
                if seedance.get(flag) is not True:
                    out.append(
                        iss.invalid_literal(
                            (*path, flag), True, seedance.get(flag), present=flag in seedance
                        )
                    )
            unknown = [k for k in seedance if k not in SEEDANCE_CONSENTS]
            if unknown:
                out.append(iss.unrecognized_keys(path, unknown))
    unknown = [k for k in value if k != "seedance"]
    if unknown:
        out.append(iss.unrecognized_keys(("consents",), unknown))


def _duration(
    body: Mapping[str, Any], entry: ModelEntry, family: Family, out: list[Issue], *, for_quote: bool
) -> None:
    allowed = durations(entry, family)
    if "duration" not in body:
        if entry.upscale is None:  # an upscale's is read from the file
            out.append(iss.required(("duration",), iss.quoted_options(allowed)))
        return
    value = body["duration"]
    if entry.upscale is not None:  # ignored on queue; a quote may give seconds
        seconds = upscale_seconds(value)
        if not isinstance(value, str):
            out.append(iss.wrong_type(("duration",), "string", value))
        elif for_quote and value not in allowed and value != "auto" and seconds is None:
            out.append(iss.not_in_enum(("duration",), allowed, value))
        elif (
            for_quote
            and seconds is not None
            and not (0 < seconds <= entry.upscale.max_input_seconds)
        ):
            out.append(
                iss.custom(
                    ("duration",),
                    "Expected a number of seconds greater than 0 "
                    f"and at most {entry.upscale.max_input_seconds:g}",
                )
            )
        return
    _enum(body, "duration", allowed, out)


def _aspect_ratio(
    body: Mapping[str, Any], entry: ModelEntry, family: Family, out: list[Issue], *, for_quote: bool
) -> None:
    allowed = aspect_ratios(entry, family)
    if "aspect_ratio" not in body:
        # Queue and quote alike: Venice prices these models by pixels ("megapixel-rate").
        if entry.aspect_ratio_required:
            out.append(iss.required(("aspect_ratio",), iss.quoted_options(allowed)))
        return
    # A quote takes any of Venice's ratios for a model without its own list.
    _enum(body, "aspect_ratio", allowed or ASPECT_RATIOS, out)


def _media(body: Mapping[str, Any], entry: ModelEntry, family: Family, out: list[Issue]) -> None:
    for key in URL_FIELDS:
        if key in body:
            _string(body, key, out, min_length=1 if key in entry.requires else 0)
        elif key in entry.requires:
            out.append(iss.required((key,), "string"))
    for key in (
        "reference_image_urls",
        "reference_video_urls",
        "reference_audio_urls",
        "reference_document_urls",
    ):
        if key in body:
            _string_list(body[key], (key,), array_max(key, family), out)
    if "elements" in body:
        elements = body["elements"]
        if not isinstance(elements, list):
            out.append(iss.wrong_type(("elements",), "array", elements))
        else:
            if len(elements) > array_max("elements", family):
                out.append(iss.too_long(("elements",), array_max("elements", family), "array"))
            for i, element in enumerate(elements):
                _element(element, ("elements", i), out)
    if "scene_image_urls" in body:
        _string_list(
            body["scene_image_urls"],
            ("scene_image_urls",),
            array_max("scene_image_urls", family),
            out,
        )


def _is_http_url(text: str) -> bool:
    if not text.isascii() or not text.isprintable() or " " in text:
        return False
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _webhook_url(value: object, out: list[Issue]) -> None:
    """`webhook_url`, ours beside Venice's fields: an http(s) URL with a host."""
    path: Path = ("webhook_url",)
    if not isinstance(value, str):
        out.append(iss.wrong_type(path, "string", value))
    elif len(value) > WEBHOOK_URL_MAX_LENGTH:
        out.append(iss.too_long(path, WEBHOOK_URL_MAX_LENGTH))
    elif not _is_http_url(value):
        out.append(iss.invalid_url(path))


def _seed(value: object, out: list[Issue]) -> None:
    """`seed`, ours beside Venice's fields: an integer of 0 … 2^32-1."""
    path: Path = ("seed",)
    if isinstance(value, bool) or not isinstance(value, int | float):
        out.append(iss.wrong_type(path, "number", value))
    elif value != int(value):
        out.append(iss.not_integer(path))
    elif value < 0:
        out.append(iss.number_too_small(path, 0))
    elif value > SEED_MAX:
        out.append(iss.number_too_big(path, SEED_MAX))


def queue_issues(body: Mapping[str, Any], entry: ModelEntry, family: Family) -> list[Issue]:
    """Every schema issue of a `/video/queue` body against `entry`, in Zod's order."""
    out: list[Issue] = []
    if "consents" in body:
        _consents(body["consents"], out)
    if entry.upscale is None:  # an upscale ignores its prompt (Venice blanks it)
        if "prompt" not in body:
            out.append(iss.required(("prompt",), "string"))
        else:
            _string(body, "prompt", out, min_length=1, max_length=entry.prompt_limit)
        if "negative_prompt" in body:
            _string(body, "negative_prompt", out, max_length=entry.prompt_limit)
    _duration(body, entry, family, out, for_quote=False)
    _aspect_ratio(body, entry, family, out, for_quote=False)
    if "omni_reference_task_type" in body:
        raw = body["omni_reference_task_type"]
        task = TASK_TYPE_ALIASES.get(raw, raw) if isinstance(raw, str) else raw
        _enum({"omni_reference_task_type": task}, "omni_reference_task_type", TASK_TYPES, out)
    if "resolution" in body:
        _enum(body, "resolution", entry.constraints.resolutions, out)
    if "upscale_factor" in body and entry.upscale is not None:
        _enum(body, "upscale_factor", entry.upscale.factors, out)
    if "audio" in body and not isinstance(body["audio"], bool):
        out.append(iss.wrong_type(("audio",), "boolean", body["audio"]))
    _media(body, entry, family, out)
    if "bitrate_mode" in body:
        _enum(body, "bitrate_mode", BITRATE_MODES, out)
    if "webhook_url" in body:
        _webhook_url(body["webhook_url"], out)
    if "seed" in body:
        _seed(body["seed"], out)
    return out


def _number(
    body: Mapping[str, Any],
    key: str,
    out: list[Issue],
    *,
    minimum: float,
    maximum: float | None = None,
    integer: bool = False,
) -> None:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        out.append(iss.wrong_type((key,), "number", value))
    elif integer and not float(value).is_integer():
        out.append(iss.not_integer((key,)))
    elif value < minimum:
        out.append(iss.number_too_small((key,), minimum))
    elif maximum is not None and value > maximum:
        out.append(iss.number_too_big((key,), maximum))


def quote_issues(body: Mapping[str, Any], entry: ModelEntry, family: Family) -> list[Issue]:
    """Every schema issue of a `/video/quote` body against `entry`; other keys are ignored."""
    out: list[Issue] = []
    _duration(body, entry, family, out, for_quote=True)
    _aspect_ratio(body, entry, family, out, for_quote=True)
    if "resolution" in body:
        _enum(body, "resolution", entry.constraints.resolutions or RESOLUTIONS, out)
    if "upscale_factor" in body:
        factors = entry.upscale.factors if entry.upscale else UPSCALE_FACTORS
        _enum(body, "upscale_factor", factors, out)
    if "audio" in body and not isinstance(body["audio"], bool):
        out.append(iss.wrong_type(("audio",), "boolean", body["audio"]))
    if "video_url" in body:
        _string(body, "video_url", out)
    if "reference_video_total_duration" in body:
        _number(
            body,
            "reference_video_total_duration",
            out,
            minimum=0,
            maximum=reference_video_total_max(family),
        )
    if "input_height" in body and entry.upscale is not None:
        _number(body, "input_height", out, minimum=1, integer=True)
    return out


def present(body: Mapping[str, Any], key: str) -> bool:
    """Whether a body gives a media field a value (an empty string or list gives none)."""
    return body.get(key) not in (None, "", [])


def refinement_issues(body: Mapping[str, Any], family: Family) -> list[Issue]:
    """Issues across fields that Venice's schema reports once each field is well-formed."""
    out: list[Issue] = []
    audio = present(body, "reference_audio_urls") or (
        family.audio_url_is_reference and present(body, "audio_url")
    )
    if audio and not (
        present(body, "reference_image_urls") or present(body, "reference_video_urls")
    ):
        out.append(
            iss.custom(
                ("reference_audio_urls",),
                "Reference audio must be paired with at least one reference image or reference video",  # noqa: E501
            )
        )
    audio_limit = family.reference_audios
    if audio_limit is not None and family.audio_url_is_reference and present(body, "audio_url"):
        count = len(body.get("reference_audio_urls") or []) + 1
        if count > audio_limit.max_items:
            out.append(
                iss.custom(
                    ("reference_audio_urls",),
                    f"At most {audio_limit.max_items} reference audios, audio_url included",
                )
            )
    return out
