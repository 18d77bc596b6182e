"""Requests built from catalogue entries, and the exact bodies Venice answers them with.

The expected bodies are written out here from Venice's conventions (spec §3.1: Zod's `issues`
and `format()` tree, StandardError's plain message), independently of
`videoqueue.catalog.issues`, so a test compares the server with this oracle, not with itself.
"""

from __future__ import annotations

import base64
import io
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import av
import numpy as np

from tests.conftest import png_data_url
from videoqueue.catalog.catalog import Catalog, load_catalog
from videoqueue.catalog.entry import MEDIA_FIELDS, REQUIREMENTS, Family, ModelEntry
from videoqueue.clock import ManualClock
from videoqueue.settings import Settings

PROMPT = "A red kite over dunes at dawn, slow dolly-in"
# 720x480: the shorter side passes every model's minimum (HappyHorse R2V: 400), W/H 1.5.
IMAGE_SIZE = (720, 480)
ALL_DURATIONS = (*(f"{n}s" for n in range(1, 31)), "-1", "1 gen", "auto", "Auto")
ALL_RESOLUTIONS = (
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
ALL_ASPECT_RATIOS = (
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
SCHEMA_MAX = {
    "reference_image_urls": 30,
    "reference_video_urls": 10,
    "reference_audio_urls": 10,
    "elements": 4,
    "scene_image_urls": 4,
}


SPEC_DAY = datetime(2026, 8, 20, 12, tzinfo=UTC)
"""The day of the spec's model list, when every model in it was still offered (the Sora 2
models it marks deprecated are removed on 2026-09-24)."""


def spec_day_clock() -> ManualClock:
    """A clock for an app that answers every model of the catalogue, deprecated ones too."""
    return ManualClock(SPEC_DAY)


def table_settings(data_dir: Path) -> Settings:
    """Settings for an app that answers a whole table of requests made with one key: the
    per-minute limits and the failed-request budget (spec §3.3) are lifted out of the way."""
    return Settings(
        data_dir=data_dir,
        queue_requests_per_minute=1_000_000,
        retrieve_requests_per_minute=1_000_000,
        failed_requests_budget=1_000_000,
    )


@cache
def catalog() -> Catalog:
    return load_catalog()


def model_ids() -> list[str]:
    return list(catalog().models)


def entry_and_family(model_id: str) -> tuple[ModelEntry, Family]:
    entry = catalog().get(model_id)
    return entry, catalog().family(entry)


# -- media --------------------------------------------------------------------------------


@cache
def image_data_url() -> str:
    return png_data_url(*IMAGE_SIZE)


@cache
def mp4_data_url(seconds: float = 3.0) -> str:
    """A small H.264 MP4 (96x64, 8 fps) as a data URL."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(int(seconds * 8)):
            pixels = np.full((64, 96, 3), (i * 9) % 255, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return "data:video/mp4;base64," + base64.b64encode(buffer.getvalue()).decode()


@cache
def wav_data_url(seconds: float = 3.0) -> str:
    """Silence as 8 kHz mono 16-bit WAV, as a data URL."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * int(8000 * seconds))
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()


def media_value(field: str) -> Any:
    """One valid value for a media field."""
    if field == "elements":
        return [{"frontal_image_url": image_data_url()}]
    single = field.removesuffix("s") if field.endswith("_urls") else field
    if "video" in single:
        value = mp4_data_url()
    elif "audio" in single:
        value = wav_data_url()
    else:
        value = image_data_url()
    return [value] if field.endswith("_urls") else value


def required_fields(entry: ModelEntry) -> list[str]:
    """The media fields a minimal valid request sends."""
    fields = []
    for need in entry.requires:
        fields.append(REQUIREMENTS[need][0][0] if need in REQUIREMENTS else need)
    return fields


def refused_field(entry: ModelEntry) -> str | None:
    """A media field the model does not take, if any."""
    allowed = set(entry.requires) | set(entry.accepts)
    return next((f for f in MEDIA_FIELDS if f not in allowed), None)


# -- valid bodies -------------------------------------------------------------------------


def valid_queue_body(entry: ModelEntry) -> dict[str, Any]:
    """The smallest `/video/queue` body the model accepts."""
    c = entry.constraints
    body: dict[str, Any] = {"model": entry.id}
    if entry.upscale is None:
        body["prompt"] = PROMPT
        body["duration"] = c.durations[0]
        if c.resolutions:
            body["resolution"] = c.resolutions[0]
    if c.aspect_ratios:
        body["aspect_ratio"] = c.aspect_ratios[0]
    for field in required_fields(entry):
        body[field] = media_value(field)
    return body


def valid_quote_body(entry: ModelEntry) -> dict[str, Any]:
    c = entry.constraints
    if entry.upscale is not None:
        return {"model": entry.id, "duration": "10", "input_height": 720}
    body: dict[str, Any] = {"model": entry.id, "duration": c.durations[-1]}
    if c.resolutions:
        body["resolution"] = c.resolutions[-1]
    if c.aspect_ratios:
        body["aspect_ratio"] = c.aspect_ratios[-1]
    return body


def unlisted_value(allowed: tuple[str, ...], universe: tuple[str, ...]) -> str:
    """A value of Venice's enum that this model does not list."""
    return next(v for v in universe if v not in allowed)


# -- Venice's bodies (the oracle) ---------------------------------------------------------


def plain(message: str) -> dict[str, Any]:
    return {"error": message}


def quoted(options: tuple[object, ...] | list[object]) -> str:
    return " | ".join(f"'{o}'" if isinstance(o, str) else str(o) for o in options)


def detailed(*issues: dict[str, Any]) -> dict[str, Any]:
    """Venice's DetailedError for these issues, with Zod's `format()` tree as `details`."""
    tree: dict[str, Any] = {"_errors": []}
    for issue in issues:
        node = tree
        for part in issue["path"]:
            node = node.setdefault(str(part), {"_errors": []})
        node["_errors"].append(issue["message"])
    return {"error": "Invalid request parameters", "details": tree, "issues": list(issues)}


def required_issue(path: list[str | int], expected: str = "string") -> dict[str, Any]:
    return {
        "code": "invalid_type",
        "expected": expected,
        "received": "undefined",
        "path": path,
        "message": "Required",
    }


def type_issue(path: list[str | int], expected: str, received: str) -> dict[str, Any]:
    return {
        "code": "invalid_type",
        "expected": expected,
        "received": received,
        "path": path,
        "message": f"Expected {expected}, received {received}",
    }


def enum_issue(
    path: list[str | int], options: tuple[object, ...] | list[object], received: object
) -> dict[str, Any]:
    expected = quoted(options)
    return {
        "code": "invalid_enum_value",
        "expected": expected,
        "received": received,
        "options": list(options),
        "path": path,
        "message": f"Invalid enum value. Expected {expected}, received '{received}'",
    }


def too_big_issue(path: list[str | int], maximum: int, kind: str = "string") -> dict[str, Any]:
    if kind == "number":
        message = f"Number must be less than or equal to {maximum}"
    else:
        noun, unit = ("String", "character(s)") if kind == "string" else ("Array", "element(s)")
        message = f"{noun} must contain at most {maximum} {unit}"
    return {
        "code": "too_big",
        "maximum": maximum,
        "type": kind,
        "inclusive": True,
        "exact": False,
        "path": path,
        "message": message,
    }


def too_small_issue(path: list[str | int], minimum: int) -> dict[str, Any]:
    return {
        "code": "too_small",
        "minimum": minimum,
        "type": "string",
        "inclusive": True,
        "exact": False,
        "path": path,
        "message": f"String must contain at least {minimum} character(s)",
    }


def literal_issue(path: list[str | int], received: object = None) -> dict[str, Any]:
    issue: dict[str, Any] = {"code": "invalid_literal", "expected": True}
    if received is not None:
        issue["received"] = received
    return {**issue, "path": path, "message": "Invalid literal value, expected true"}


def custom_issue(path: list[str | int], message: str) -> dict[str, Any]:
    return {"code": "custom", "path": path, "message": message}


# -- per-model violations -----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One request and the exact status and body Venice answers it with."""

    name: str
    body: dict[str, Any]
    status: int
    expected: dict[str, Any]


def _with(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, **changes}


def _without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys}


def _prompt_cases(entry: ModelEntry, body: dict[str, Any]) -> Iterator[Case]:
    limit = entry.constraints.prompt_character_limit or 2500
    yield Case(
        "prompt-missing", _without(body, "prompt"), 400, detailed(required_issue(["prompt"]))
    )
    yield Case(
        "prompt-empty", _with(body, prompt=""), 400, detailed(too_small_issue(["prompt"], 1))
    )
    yield Case(
        "prompt-over-limit",
        _with(body, prompt="x" * (limit + 1)),
        400,
        detailed(too_big_issue(["prompt"], limit)),
    )
    yield Case("prompt-at-limit", _with(body, prompt="x" * limit), 200, {})
    yield Case(
        "negative-prompt-over-limit",
        _with(body, negative_prompt="x" * (limit + 1)),
        400,
        detailed(too_big_issue(["negative_prompt"], limit)),
    )


def _duration_cases(entry: ModelEntry, family: Family, body: dict[str, Any]) -> Iterator[Case]:
    allowed = (*entry.constraints.durations, *family.source_matched_durations)
    wrong = unlisted_value(allowed, ALL_DURATIONS)
    yield Case(
        "duration-not-listed",
        _with(body, duration=wrong),
        400,
        detailed(enum_issue(["duration"], allowed, wrong)),
    )
    yield Case(
        "duration-missing",
        _without(body, "duration"),
        400,
        detailed(required_issue(["duration"], quoted(allowed))),
    )
    yield Case(
        "duration-a-number",
        _with(body, duration=5),
        400,
        detailed(type_issue(["duration"], quoted(allowed), "number")),
    )
    for special in ("Auto", "-1", "auto", "1 gen"):
        if special not in allowed:
            yield Case(
                f"duration-{special}-not-listed",
                _with(body, duration=special),
                400,
                detailed(enum_issue(["duration"], allowed, special)),
            )


def _shape_cases(entry: ModelEntry, family: Family, body: dict[str, Any]) -> Iterator[Case]:
    c = entry.constraints
    if entry.upscale is not None:
        yield Case(
            "resolution-on-upscale",
            _with(body, resolution="1080p"),
            400,
            plain("Use upscale_factor instead of resolution"),
        )
        yield Case(
            "upscale-factor-not-listed",
            _with(body, upscale_factor=3),
            400,
            detailed(enum_issue(["upscale_factor"], entry.upscale.factors, 3)),
        )
        for factor in entry.upscale.factors:
            yield Case(f"upscale-factor-{factor}", _with(body, upscale_factor=factor), 200, {})
    else:
        yield Case(
            "upscale-factor-refused",
            _with(body, upscale_factor=2),
            400,
            plain("This model does not support upscale_factor"),
        )
        if c.resolutions:
            wrong = unlisted_value(c.resolutions, ALL_RESOLUTIONS)
            yield Case(
                "resolution-not-listed",
                _with(body, resolution=wrong),
                400,
                detailed(enum_issue(["resolution"], c.resolutions, wrong)),
            )
            for resolution in c.resolutions:
                yield Case(f"resolution-{resolution}", _with(body, resolution=resolution), 200, {})
        else:
            yield Case(
                "resolution-refused",
                _with(body, resolution="720p"),
                400,
                plain("This model does not support resolution"),
            )
    ratios = (*c.aspect_ratios, *family.source_matched_aspect_ratios) if c.aspect_ratios else ()
    if ratios:
        wrong = unlisted_value(ratios, ALL_ASPECT_RATIOS)
        yield Case(
            "aspect-ratio-not-listed",
            _with(body, aspect_ratio=wrong),
            400,
            detailed(enum_issue(["aspect_ratio"], ratios, wrong)),
        )
        yield Case(
            "aspect-ratio-unknown",
            _with(body, aspect_ratio="99:1"),
            400,
            detailed(enum_issue(["aspect_ratio"], ratios, "99:1")),
        )
        if entry.aspect_ratio_required:
            yield Case(
                "aspect-ratio-missing",
                _without(body, "aspect_ratio"),
                400,
                detailed(required_issue(["aspect_ratio"], quoted(ratios))),
            )
        else:
            yield Case("aspect-ratio-omitted", _without(body, "aspect_ratio"), 200, {})
    else:
        yield Case(
            "aspect-ratio-refused",
            _with(body, aspect_ratio="16:9"),
            400,
            plain("This model does not support aspect_ratio"),
        )
    yield Case(
        "audio-not-boolean",
        _with(body, audio="yes"),
        400,
        detailed(type_issue(["audio"], "boolean", "string")),
    )
    yield Case("audio-false", _with(body, audio=False), 200, {})
    if not family.bitrate_mode:
        yield Case(
            "bitrate-mode-refused",
            _with(body, bitrate_mode="high"),
            400,
            plain("This model does not support bitrate_mode"),
        )
    if not family.omni_reference_task_type:
        yield Case(
            "task-type-refused",
            _with(body, omni_reference_task_type="edit"),
            400,
            plain("This model does not support omni_reference_task_type"),
        )


def _media_cases(entry: ModelEntry, body: dict[str, Any]) -> Iterator[Case]:
    for need in entry.requires:
        if need in REQUIREMENTS:
            fields, message = REQUIREMENTS[need]
            yield Case(f"{need}-missing", _without(body, *fields), 400, plain(message))
        else:
            yield Case(
                f"{need}-missing", _without(body, need), 400, detailed(required_issue([need]))
            )
            yield Case(
                f"{need}-not-a-string",
                _with(body, **{need: 7}),
                400,
                detailed(type_issue([need], "string", "number")),
            )
    refused = refused_field(entry)
    if refused is not None:
        yield Case(
            f"{refused}-refused",
            _with(body, **{refused: media_value(refused)}),
            400,
            plain(f"This model does not support {refused}"),
        )
    yield Case(
        "keyframes-refused",
        _with(body, keyframes=[{"image_url": image_data_url(), "frame_index": 0}]),
        400,
        plain("This model does not support keyframes"),
    )


def queue_cases(entry: ModelEntry, family: Family) -> Iterator[Case]:
    """Every constraint of `entry`, broken once, and the values it lists, each used once."""
    body = valid_queue_body(entry)
    yield Case("valid", body, 200, {})
    if entry.upscale is None:
        yield from _prompt_cases(entry, body)
        yield from _duration_cases(entry, family, body)
    yield from _shape_cases(entry, family, body)
    yield from _media_cases(entry, body)
