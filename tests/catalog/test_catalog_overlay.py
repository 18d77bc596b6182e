"""An operator's catalogue file: new models, overridden fields and prices, without code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.catalog.cases import table_settings
from tests.conftest import Env, build_env
from videoqueue.api.app import create_app
from videoqueue.catalog.catalog import CatalogError, load_catalog
from videoqueue.catalog.entry import PerSecondPrice, job_kinds
from videoqueue.engines.base import JobKind
from videoqueue.engines.registry import FACTORIES
from videoqueue.settings import Settings

OVERLAY = """
[families."my-refs"]
reference_images_max = 2
prompt_references = { "@Image" = "reference_image_urls" }

[models."wan-2-7-text-to-video"]
engine = "mine"
price = { rule = "per_second", rates = { "720p" = 0.09, "1080p" = 0.12 } }

[models."wan-2-7-text-to-video".constraints]
prompt_character_limit = 4000

[models."my-wan-r2v"]
name = "My Wan R2V"
created = 1767225600
family = "my-refs"
requires = ["reference_image"]
accepts = ["reference_image_urls"]
price = { rule = "per_second", rates = { "480p" = 0.02, "720p" = 0.04 }, audio_multiplier = 1.5 }

[models."my-wan-r2v".constraints]
model_type = "image-to-video"
durations = ["5s", "10s"]
resolutions = ["480p", "720p"]
aspect_ratios = ["16:9", "9:16"]
audio = true
audio_configurable = true
"""


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(OVERLAY)
    return path


def test_overlay_changes_only_the_keys_it_names(overlay: Path) -> None:
    shipped = load_catalog().get("wan-2-7-text-to-video")
    changed = load_catalog(overlay).get("wan-2-7-text-to-video")
    assert changed.engine == "mine"
    assert changed.constraints.prompt_character_limit == 4000
    assert changed.price == PerSecondPrice(rule="per_second", rates={"720p": 0.09, "1080p": 0.12})
    assert changed.constraints.durations == shipped.constraints.durations
    assert (changed.name, changed.accepts) == (shipped.name, shipped.accepts)


def test_overlay_adds_models_and_families(overlay: Path) -> None:
    catalog = load_catalog(overlay)
    model = catalog.get("my-wan-r2v")
    assert catalog.family(model).reference_images_max == 2
    assert len(catalog.models) == len(load_catalog().models) + 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[models."my-model"]\nname = "x"\n', "my-model"),
        ('[models."wan-2-7-text-to-video"]\nfamily = "nope"\n', "unknown family 'nope'"),
        (
            '[models."wan-2-7-text-to-video"]\naccepts = ["image_urls"]\n',
            "unknown media fields ['image_urls']",
        ),
        (
            '[models."wan-2-7-text-to-video"]\nprice = { rule = "per_second", rates = { "720p" = 1 } }\n',  # noqa: E501
            "no rate for ['1080p']",
        ),
        (
            '[models."wan-2-7-text-to-video"]\ndefault_resolution = "4k"\n',
            "default_resolution '4k' is not listed",
        ),
        (
            '[models."topaz-video-upscale"]\nprice = { rule = "per_generation", amount = 1 }\n',
            "an upscale price rule goes with an [upscale] table",
        ),
        ("[pricing]\nx = 1\n", "unknown top-level tables ['pricing']"),
        ('[aliases]\n"sora-2" = "nope"\n', "alias 'sora-2' names no model: 'nope'"),
        (
            '[aliases]\n"wan-2-7-text-to-video" = "wan-2.2-a14b-text-to-video"\n',
            "alias 'wan-2-7-text-to-video' is a model id",
        ),
        ('[aliases]\n"sora-2" = 1\n', "each alias names one model id"),
        ('[models."wan-2-7-text-to-video"\n', "catalog.toml"),
    ],
)
def test_an_inconsistent_overlay_is_refused_at_load(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    with pytest.raises(CatalogError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        load_catalog(path)


def test_a_model_bound_to_an_unknown_engine_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text('[models."wan-2-7-text-to-video"]\nengine = "nope"\n')
    with pytest.raises(CatalogError) as refused:
        load_catalog(path, engines=FACTORIES)
    assert str(refused.value) == (
        "wan-2-7-text-to-video: unknown engine 'nope' (known engines: preview, realesrgan, upscale)"
    )
    assert load_catalog(path).get("wan-2-7-text-to-video").engine == "nope"  # unchecked


@pytest.mark.parametrize(
    ("model", "engine", "missing"),
    [
        ("topaz-video-upscale", "preview", "upscale"),
        ("wan-2-7-text-to-video", "upscale", "text"),
        ("kling-o3-pro-reference-to-video", "realesrgan", "first-last-frame, image, reference"),
    ],
)
def test_a_model_bound_to_an_engine_that_cannot_do_its_kind_is_refused_at_load(
    tmp_path: Path, model: str, engine: str, missing: str
) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(f'[models."{model}"]\nengine = "{engine}"\n')
    with pytest.raises(CatalogError) as refused:
        load_catalog(path, engines=FACTORIES)
    problems = str(refused.value).split("; ")
    assert problems[0] == f"{model}: engine {engine!r} cannot do {missing} jobs"


def test_every_shipped_model_asks_only_for_kinds_engines_know() -> None:
    for entry in load_catalog(engines=FACTORIES).models.values():
        assert job_kinds(entry) and job_kinds(entry) <= set(JobKind), entry.id


def test_the_app_does_not_start_on_a_catalogue_naming_an_unknown_engine(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text('[models."topaz-video-upscale"]\nengine = "nope"\n')
    settings = Settings(data_dir=tmp_path / "data", catalog_path=path)
    with pytest.raises(CatalogError, match="topaz-video-upscale: unknown engine 'nope'"):
        create_app(settings)


@pytest.fixture
def overlaid_env(tmp_path: Path, overlay: Path) -> Iterator[Env]:
    mine = {"mine": "tests.engines.fixture_engines:Instant"}
    settings = table_settings(tmp_path / "data").model_copy(
        update={"catalog_path": overlay, "engines": mine}
    )
    yield from build_env(settings)


def test_the_server_lists_quotes_and_validates_the_operators_models(overlaid_env: Env) -> None:
    env = overlaid_env
    listed = env.client.get("/api/v1/models", params={"type": "video"}).json()["data"]
    spec = next(m for m in listed if m["id"] == "my-wan-r2v")["model_spec"]
    assert spec["constraints"]["durations"] == ["5s", "10s"]
    wan = next(m for m in listed if m["id"] == "wan-2-7-text-to-video")["model_spec"]
    assert wan["videoqueue"]["engine"] == "mine"
    assert wan["constraints"]["prompt_character_limit"] == 4000

    quote = {"model": "my-wan-r2v", "duration": "10s", "resolution": "720p"}
    assert env.post("/video/quote", quote).json() == {"quote": 0.60}  # 0.04 x 10 x 1.5
    wan_quote = {"model": "wan-2-7-text-to-video", "duration": "5s", "resolution": "1080p"}
    assert env.post("/video/quote", wan_quote).json() == {"quote": 0.60}

    key = env.make_key()
    body = {
        "model": "my-wan-r2v",
        "prompt": "@Image3 waves",
        "duration": "5s",
        "reference_image_urls": ["https://example.org/a.png"] * 2,
    }
    response = env.post("/video/queue", body, key)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "The prompt refers to @Image3, but reference_image_urls has 2 item(s)"},
    )
    response = env.post("/video/queue", {**body, "reference_image_urls": []}, key)
    assert (response.status_code, response.json()) == (
        400,
        {"error": "At least one reference image is required"},
    )


def test_an_alias_names_a_model_by_another_name(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text('[aliases]\n"sora-2" = "wan-2.2-a14b-text-to-video"\n')
    catalog = load_catalog(path)
    resolved = catalog.resolve("sora-2")
    assert resolved is not None and resolved.id == "wan-2.2-a14b-text-to-video"
    assert catalog.resolve("wan-2-7-text-to-video") is catalog.get("wan-2-7-text-to-video")
    assert catalog.resolve("sora-2-pro") is None
    assert catalog.find("sora-2") is None  # Venice's routes take only catalogue ids
