"""A model bound to a diffusers family, through the HTTP API: `/models` says what it renders,
and a request for anything else is refused in Venice's shapes, never silently changed.

The app only reads the binding: no weights folder is loaded (that is the workers' part).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.catalog.cases import detailed, enum_issue, plain, table_settings
from tests.conftest import Env, build_env, load_job

OVERLAY = """
[models."my-wan"]
name = "My Wan"
created = 1767225600
engine = "my-wan21"
fps = 16
price = { rule = "per_second", rates = { "480p" = 0.01, "720p" = 0.02 } }
[models."my-wan".constraints]
model_type = "text-to-video"
durations = ["1s", "5s"]
resolutions = ["480p", "720p"]
aspect_ratios = ["16:9", "9:16"]
audio = false
audio_configurable = false

[models."my-strict-wan"]
name = "My strict Wan"
created = 1767225600
engine = "my-wan21"
fps = 16
audio_request = "refuse"
price = { rule = "per_second", rates = { "480p" = 0.01 } }
[models."my-strict-wan".constraints]
model_type = "text-to-video"
durations = ["5s"]
resolutions = ["480p"]
aspect_ratios = ["16:9"]
audio = false
audio_configurable = false
"""

WAN21 = "videoqueue.engines.diffusers:load?family=wan21&path=/weights/Wan2.1-T2V-1.3B-Diffusers"


@pytest.fixture
def bound_env(tmp_path: Path) -> Iterator[Env]:
    overlay = tmp_path / "catalog.toml"
    overlay.write_text(OVERLAY)
    settings = table_settings(tmp_path / "data").model_copy(
        update={"catalog_path": overlay, "engines": {"my-wan21": WAN21}}
    )
    yield from build_env(settings)


def listed(env: Env, model_id: str) -> dict[str, Any]:
    models = env.client.get("/api/v1/models", params={"type": "video"}).json()["data"]
    spec: dict[str, Any] = next(m for m in models if m["id"] == model_id)["model_spec"]
    return spec


def body(**changes: Any) -> dict[str, Any]:
    return {
        "model": "my-wan",
        "prompt": "a heron lands on a lake",
        "duration": "5s",
        "resolution": "480p",
        **changes,
    }


def test_models_lists_what_the_family_renders(bound_env: Env) -> None:
    spec = listed(bound_env, "my-wan")
    assert spec["constraints"] == {
        "model_type": "text-to-video",
        "aspect_ratios": ["16:9", "9:16"],
        "resolutions": ["480p", "720p"],
        "durations": ["1s", "5s"],
        "audio": False,
        "audio_configurable": False,
        "audio_input": False,
        "per_reference_audio": False,
        "video_input": False,
    }
    assert spec["videoqueue"] == {
        "engine": "my-wan21",
        "delivery": "bytes",
        "media": {"fields": [], "required": []},
        "audio_request": "silent_track",
    }


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"duration": "10s"}, detailed(enum_issue(["duration"], ("1s", "5s"), "10s"))),
        (
            {"resolution": "1080p"},
            detailed(enum_issue(["resolution"], ("480p", "720p"), "1080p")),
        ),
        (
            {"aspect_ratio": "1:1"},
            detailed(enum_issue(["aspect_ratio"], ("16:9", "9:16"), "1:1")),
        ),
        (
            {"image_url": "https://example.org/a.png"},
            plain("This model does not support image_url"),
        ),
    ],
)
def test_a_request_outside_the_models_constraints_gets_venices_error(
    bound_env: Env, changes: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = bound_env.post("/video/queue", body(**changes), bound_env.make_key())
    assert (response.status_code, response.json()) == (400, expected)


def test_audio_true_on_a_silent_model_queues_a_silent_video(bound_env: Env) -> None:
    response = bound_env.post("/video/queue", body(audio=True), bound_env.make_key())
    assert response.status_code == 200, response.text
    job = load_job(bound_env.db, response.json()["queue_id"])
    spec = job.job_spec
    assert (spec.audio, spec.fps, spec.width, spec.height) == (False, 16, 854, 480)


def test_audio_true_is_refused_where_the_catalogue_says_so(bound_env: Env) -> None:
    assert listed(bound_env, "my-strict-wan")["videoqueue"]["audio_request"] == "refuse"
    key = bound_env.make_key()
    strict = body(model="my-strict-wan")
    response = bound_env.post("/video/queue", {**strict, "audio": True}, key)
    assert (response.status_code, response.json()) == (
        400,
        plain("This model does not support audio"),
    )
    for accepted in ({**strict, "audio": False}, strict):
        assert bound_env.post("/video/queue", accepted, key).status_code == 200
