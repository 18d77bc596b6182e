"""`GET /models`: every listed video model in Venice's entry shape, checked against the
`ModelResponse` schema of Venice's OpenAPI, with the engine that serves it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from tests.catalog.cases import SPEC_DAY, catalog, spec_day_clock, table_settings
from tests.conftest import Env, build_env
from tests.fleet_rows import register
from videoqueue.catalog.listing import PREVIEW_NOTE

OPENAPI = Path(__file__).parents[1] / "data" / "venice-openapi-video.json"
MODEL_TYPES = ["asr", "embedding", "image", "music", "text", "tts", "upscale", "inpaint", "video"]
CONSTRAINT_KEYS = {
    "model_type",
    "aspect_ratios",
    "resolutions",
    "durations",
    "audio",
    "audio_configurable",
    "audio_input",
    "per_reference_audio",
    "video_input",
    "prompt_character_limit",
    "reference_image_min_short_side_pixels",
    "reference_image_min_aspect_ratio",
    "reference_image_max_aspect_ratio",
}


@cache
def list_validator() -> jsonschema_rs.Validator:
    """The 200 body schema of Venice's `GET /models`, its `$ref`s resolved in the document."""
    spec = json.loads(OPENAPI.read_text())
    body = spec["paths"]["/models"]["get"]["responses"]["200"]["content"]["application/json"]
    return jsonschema_rs.Draft4Validator({**body["schema"], "components": spec["components"]})


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data_dir: Path = tmp_path_factory.mktemp("models") / "data"
    for env in build_env(table_settings(data_dir), spec_day_clock()):
        # A live worker with every engine ready: no model is offline.
        register(env.db, "worker", {"preview": "ready", "upscale": "ready"}, heard_at=SPEC_DAY)
        yield env


def get_models(env: Env, **params: str) -> Any:
    return env.client.get("/api/v1/models", params=params)


@pytest.fixture(scope="module")
def video_list(shared_env: Env) -> dict[str, Any]:
    response = get_models(shared_env, type="video")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_video_list_matches_venices_schema(video_list: dict[str, Any]) -> None:
    errors = [error.message for error in list_validator().iter_errors(video_list)]
    assert errors == []


def test_video_list_holds_exactly_the_listed_models(video_list: dict[str, Any]) -> None:
    assert (video_list["object"], video_list["type"]) == ("list", "video")
    listed = [m.id for m in catalog().listed(SPEC_DAY)]
    assert [entry["id"] for entry in video_list["data"]] == listed
    assert len(listed) == 116
    assert "seedance-2-0-image-to-video" not in listed  # consent ids stay unlisted (§11.2)


def test_entries_carry_venices_constraint_keys(video_list: dict[str, Any]) -> None:
    for entry in video_list["data"]:
        constraints = entry["model_spec"]["constraints"]
        assert set(constraints) <= CONSTRAINT_KEYS, entry["id"]
        assert {
            "model_type",
            "aspect_ratios",
            "resolutions",
            "durations",
            "audio",
            "audio_configurable",
            "audio_input",
            "per_reference_audio",
            "video_input",
        } <= set(constraints), entry["id"]
        assert constraints.get("prompt_character_limit") != 2500, "absent means 2500"
        assert "pricing" not in entry["model_spec"], "no pricing for video models (spec §10)"


def test_the_wire_capture_entry(video_list: dict[str, Any]) -> None:
    """Spec §10's verbatim entry, with the 2026-08-20 durations and videoqueue's additions."""
    entry = next(
        e for e in video_list["data"] if e["id"] == "seedance-1-5-pro-image-to-video-basic"
    )
    assert entry == {
        "created": 1773964800,
        "id": "seedance-1-5-pro-image-to-video-basic",
        "object": "model",
        "owned_by": "venice.ai",
        "type": "video",
        "model_spec": {
            "privacy": "anonymized",
            "constraints": {
                "model_type": "image-to-video",
                "aspect_ratios": [],
                "resolutions": ["1080p", "720p", "480p"],
                "durations": [f"{n}s" for n in range(4, 13)],
                "audio": True,
                "audio_configurable": True,
                "audio_input": False,
                "per_reference_audio": False,
                "video_input": False,
                "prompt_character_limit": 3500,
                "reference_image_min_short_side_pixels": 300,
                "reference_image_min_aspect_ratio": 0.4,
                "reference_image_max_aspect_ratio": 2.5,
            },
            "model_sets": ["uncensored", "high_resolution", "audio"],
            "name": "Seedance 1.5 Pro",
            "offline": False,
            "traits": [],
            "uncensored": True,
            "description": PREVIEW_NOTE,
            "videoqueue": {
                "engine": "preview",
                "delivery": "bytes",
                "media": {"fields": ["image_url"], "required": [["image_url"]]},
            },
        },
    }


def test_each_entry_names_the_engine_that_serves_it(video_list: dict[str, Any]) -> None:
    engines = {e["id"]: e["model_spec"]["videoqueue"]["engine"] for e in video_list["data"]}
    assert engines.pop("topaz-video-upscale") == "upscale"
    assert set(engines.values()) == {"preview"}
    delivery = {
        e["id"]
        for e in video_list["data"]
        if e["model_spec"]["videoqueue"]["delivery"] == "download_url"
    }
    assert all(model_id.startswith("grok-imagine-") for model_id in delivery)
    assert len(delivery) == 7


@pytest.mark.parametrize(
    ("model_id", "media"),
    [
        ("wan-2.5-preview-text-to-video", {"fields": ["audio_url"], "required": []}),
        (
            "pixverse-c1-transition",
            {
                "fields": ["image_url", "end_image_url"],
                "required": [["image_url"], ["end_image_url"]],
            },
        ),
        (
            "kling-o3-pro-reference-to-video",
            {
                "fields": ["image_url", "end_image_url", "elements", "scene_image_urls"],
                "required": [["image_url", "elements", "scene_image_urls"]],
            },
        ),
        (
            "happyhorse-1-0-reference-to-video",
            # "at least one reference", of the kinds it takes: images only
            {"fields": ["reference_image_urls"], "required": [["reference_image_urls"]]},
        ),
    ],
)
def test_each_entry_names_the_media_it_takes(
    video_list: dict[str, Any], model_id: str, media: dict[str, Any]
) -> None:
    """`fields` in the request schema's order; each list in `required` needs one of its fields."""
    entry = next(e for e in video_list["data"] if e["id"] == model_id)
    assert entry["model_spec"]["videoqueue"]["media"] == media
    assert "upscale" not in entry["model_spec"]["videoqueue"]


def test_the_upscaler_lists_its_factors(video_list: dict[str, Any]) -> None:
    entry = next(e for e in video_list["data"] if e["id"] == "topaz-video-upscale")
    assert entry["model_spec"]["videoqueue"]["upscale"] == {
        "factors": [1, 2, 4],
        "default_factor": 2,
    }
    assert entry["model_spec"]["videoqueue"]["media"] == {
        "fields": ["video_url"],
        "required": [["video_url"]],
    }


def test_deprecated_models_carry_venices_deprecation_block(video_list: dict[str, Any]) -> None:
    deprecated = {
        e["id"]: e["model_spec"]["deprecation"]
        for e in video_list["data"]
        if "deprecation" in e["model_spec"]
    }
    assert deprecated == {
        model_id: {"autoRemap": False, "date": "2026-09-24", "removesAt": "2026-09-24"}
        for model_id in (
            "sora-2-image-to-video",
            "sora-2-text-to-video",
            "sora-2-pro-image-to-video",
            "sora-2-pro-text-to-video",
        )
    }


def test_all_lists_the_video_models_and_other_types_none(
    shared_env: Env, video_list: dict[str, Any]
) -> None:
    everything = get_models(shared_env, type="all").json()
    assert everything == {**video_list, "type": "all"}
    for model_type in [t for t in MODEL_TYPES if t != "video"] + ["code"]:
        body = get_models(shared_env, type=model_type).json()
        assert body == {"object": "list", "type": model_type, "data": []}
        assert list(list_validator().iter_errors(body)) == []
    assert get_models(shared_env).json() == {"object": "list", "type": "text", "data": []}


def test_an_unknown_type_is_a_zod_union_error(shared_env: Env) -> None:
    response = get_models(shared_env, type="videos")
    first = "'" + "' | '".join(MODEL_TYPES) + "'"
    first_message = f"Invalid enum value. Expected {first}, received 'videos'"
    second_message = "Invalid enum value. Expected 'all' | 'code', received 'videos'"
    assert response.status_code == 400
    assert response.json() == {
        "error": "Invalid request parameters",
        "details": {"_errors": [], "type": {"_errors": [first_message, second_message]}},
        "issues": [
            {
                "code": "invalid_union",
                "unionErrors": [
                    {
                        "issues": [
                            {
                                "code": "invalid_enum_value",
                                "expected": first,
                                "received": "videos",
                                "options": MODEL_TYPES,
                                "path": ["type"],
                                "message": first_message,
                            }
                        ],
                        "name": "ZodError",
                    },
                    {
                        "issues": [
                            {
                                "code": "invalid_enum_value",
                                "expected": "'all' | 'code'",
                                "received": "videos",
                                "options": ["all", "code"],
                                "path": ["type"],
                                "message": second_message,
                            }
                        ],
                        "name": "ZodError",
                    },
                ],
                "path": ["type"],
                "message": "Invalid input",
            }
        ],
    }
