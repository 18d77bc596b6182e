"""Reading a `POST /v1/videos` body (JSON or multipart, as the openai SDK sends it) and
mapping it onto the Venice queue body the jobs service validates, prices and queues.

`size` and `seconds` become the resolution, aspect ratio and duration that give them on the
bound model (`catalog.frame_sizes`); `model` may be an alias; `input_reference` (an uploaded
image, or `{"image_url": …}`) becomes `image_url`, the first frame.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from videoqueue.api.body import json_object
from videoqueue.catalog.catalog import Catalog
from videoqueue.catalog.frame_sizes import default_duration, offered_seconds, offered_sizes
from videoqueue.catalog.issues import BadRequest, quoted_options

FIELDS = ("model", "prompt", "seconds", "size", "input_reference")
DEFAULT_MODEL = "sora-2"
"""The SDK's default model: served where the operator's catalogue makes it an alias."""
STATE_KEY = "openai_create"
MAX_FORM_FIELDS = 16


class InvalidVideoRequest(BadRequest):
    """Invalid request"""

    def __init__(self, message: str, param: str | None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.param = param


@dataclass(frozen=True)
class VideoCreate:
    """The fields of a create request, before they are checked against the model."""

    model: str
    prompt: object
    seconds: object = None
    size: object = None
    image_url: str | None = None


def _refuse_unknown(keys: list[str]) -> None:
    for key in keys:
        if key not in FIELDS:
            raise InvalidVideoRequest(f"Unrecognized request argument supplied: {key}", key)


def _image_url(reference: object) -> str | None:
    if reference is None:
        return None
    if isinstance(reference, Mapping) and set(reference) == {"image_url"}:
        url = reference["image_url"]
        if isinstance(url, str):
            return url
    raise InvalidVideoRequest(
        'input_reference must be an uploaded image or {"image_url": "…"} (a data: or '
        "http(s):// URL); file_id is not supported",
        "input_reference",
    )


async def _upload_url(upload: UploadFile) -> str:
    data = await upload.read()
    mime = upload.content_type or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def _from_form(request: Request) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    reference: dict[str, Any] = {}
    # Closed on leaving: an uploaded file is spooled to a temporary file until then.
    async with request.form(max_files=1, max_fields=MAX_FORM_FIELDS) as form:
        for key, value in form.multi_items():
            if key.startswith("input_reference[") and key.endswith("]"):
                reference[key.removeprefix("input_reference[").removesuffix("]")] = value
            elif key == "input_reference" and isinstance(value, UploadFile):
                fields["input_reference"] = {"image_url": await _upload_url(value)}
            else:
                fields[key] = value
    if reference:
        fields["input_reference"] = reference
    return fields


async def read_create(request: Request) -> VideoCreate:
    """The create request's fields (read once per request). Raises `InvalidVideoRequest`."""
    cached = getattr(request.state, STATE_KEY, None)
    if isinstance(cached, VideoCreate):
        return cached
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        fields = await _from_form(request)
    elif content_type == "application/json":
        fields = await json_object(request)
    else:
        raise InvalidVideoRequest(
            "Content-Type must be application/json or multipart/form-data",
            None,
            "invalid_content_type",
        )
    _refuse_unknown(list(fields))
    model = fields.get("model", DEFAULT_MODEL)
    if not isinstance(model, str):
        raise InvalidVideoRequest("model must be a string", "model")
    create = VideoCreate(
        model=model,
        prompt=fields.get("prompt"),
        seconds=fields.get("seconds"),
        size=fields.get("size"),
        image_url=_image_url(fields.get("input_reference")),
    )
    setattr(request.state, STATE_KEY, create)
    return create


def _choice(value: object, offered: Mapping[str, Any], param: str, model: str) -> str:
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    if text is None or text not in offered:
        raise InvalidVideoRequest(
            f"{param} must be one of {quoted_options(list(offered)) or 'none'} for {model}"
            f" (got {value!r})",
            param,
            code="invalid_value",
        )
    return text


def venice_body(create: VideoCreate, catalog: Catalog, now: datetime) -> dict[str, Any]:
    """The Venice queue body for the request, or `InvalidVideoRequest` for a model, size or
    seconds the catalogue does not offer (naming the values the model can do)."""
    entry = catalog.resolve(create.model, now)
    if entry is None:
        raise InvalidVideoRequest(
            f"The model '{create.model}' does not exist", "model", code="model_not_found"
        )
    body: dict[str, Any] = {"model": entry.id, "prompt": create.prompt}
    if create.prompt is None:
        del body["prompt"]  # Venice's validation answers "Required"
    if create.seconds is None:
        body["duration"] = default_duration(entry)
    else:
        seconds = offered_seconds(entry)
        body["duration"] = seconds[_choice(create.seconds, seconds, "seconds", entry.id)]
    if create.size is not None:
        sizes = offered_sizes(entry, catalog.family(entry))
        shape = sizes[_choice(create.size, sizes, "size", entry.id)]
        if shape.resolution is not None:
            body["resolution"] = shape.resolution
        if shape.aspect_ratio is not None:
            body["aspect_ratio"] = shape.aspect_ratio
    if create.image_url is not None:
        body["image_url"] = create.image_url
    return body
