"""A model bound to a diffusers family may advertise only what the family renders."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from videoqueue.catalog.catalog import CatalogError, load_catalog
from videoqueue.engines.diffusers_families import FAMILIES
from videoqueue.engines.registry import engine_factories


def diffusers(family: str) -> str:
    return f"videoqueue.engines.diffusers:load?family={family}&path=/weights/nowhere"


ENGINES = engine_factories(
    {f"my-{family}": diffusers(family) for family in (*FAMILIES, "wan99")}
    | {"by-module": "videoqueue.engines.diffusers.engine:load?family=wan21&path=/w"}
)

WAN = {
    "name": '"My Wan"',
    "created": "1767225600",
    "engine": '"my-wan21"',
    "fps": "16",
    "requires": '["image_url"]',
    "accepts": '["end_image_url"]',
    "price": '{ rule = "per_second", rates = { "480p" = 0.01, "720p" = 0.02, "1080p" = 0.03 } }',
}
WAN_CONSTRAINTS = {
    "model_type": '"image-to-video"',
    "durations": '["1s", "5s"]',
    "resolutions": '["480p", "720p"]',
    "aspect_ratios": '["16:9", "9:16"]',
    "audio": "false",
    "audio_configurable": "false",
}


def overlay(tmp_path: Path, model_id: str = "my-wan", **changes: str) -> Path:
    """A catalogue overlay holding one model: the Wan entry above with `changes` (a key
    `constraints_x` changes constraint `x`)."""
    top = {**WAN, **{k: v for k, v in changes.items() if not k.startswith("constraints_")}}
    constraints = {
        **WAN_CONSTRAINTS,
        **{
            k.removeprefix("constraints_"): v
            for k, v in changes.items()
            if k.startswith("constraints_")
        },
    }
    lines = [f'[models."{model_id}"]', *(f"{k} = {v}" for k, v in top.items())]
    lines += [f'[models."{model_id}".constraints]', *(f"{k} = {v}" for k, v in constraints.items())]
    path = tmp_path / "catalog.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def refusal(path: Path) -> str:
    with pytest.raises(CatalogError) as refused:
        load_catalog(path, engines=ENGINES)
    return str(refused.value)


def test_a_model_that_fits_its_family_loads(tmp_path: Path) -> None:
    entry = load_catalog(overlay(tmp_path), engines=ENGINES).get("my-wan")
    assert (entry.engine, entry.fps, entry.audio_request) == ("my-wan21", 16, "silent_track")


def test_an_ltx2_model_with_sound_up_to_20_s_and_4k_loads(tmp_path: Path) -> None:
    path = overlay(
        tmp_path,
        engine='"my-ltx2"',
        fps="24",
        accepts="[]",
        price='{ rule = "per_second", rates = { "*" = 0.1 } }',
        constraints_durations='["6s", "20s"]',
        constraints_resolutions='["1080p", "2160p"]',
        constraints_audio="true",
        constraints_audio_configurable="true",
    )
    assert load_catalog(path, engines=ENGINES).get("my-wan").constraints.audio


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        (
            {"engine": '"my-wan22"'},
            "engine 'my-wan22' cannot do first-last-frame jobs",
        ),
        (
            {"accepts": '["reference_image_urls"]'},
            "engine 'my-wan21' cannot do reference jobs",
        ),
        ({"fps": "24"}, "fps 24 is not the native rate of engine 'my-wan21' (set fps = 16)"),
        (
            {"engine": '"by-module"', "fps": "24"},
            "fps 24 is not the native rate of engine 'by-module' (set fps = 16)",
        ),
        (
            {"engine": '"my-wan22-ti2v"', "accepts": "[]"},
            "fps 16 is not the native rate of engine 'my-wan22-ti2v' (set fps = 24)",
        ),
        (
            {"constraints_durations": '["5s", "6s", "10s"]'},
            "engine 'my-wan21' renders at most 81 frames: durations ['6s', '10s'] are longer",
        ),
        (
            {"constraints_resolutions": '["720p", "1080p"]'},
            "engine 'my-wan21' renders at most 720 lines: resolutions ['1080p'] are taller",
        ),
        (
            {"constraints_audio": "true"},
            "engine 'my-wan21' makes no sound: set constraints audio to false "
            "(audio_request says how audio: true is answered)",
        ),
        (
            {"constraints_audio": "true", "constraints_audio_configurable": "true"},
            "engine 'my-wan21' makes no sound: set constraints audio and audio_configurable "
            "to false (audio_request says how audio: true is answered)",
        ),
        (
            {"accepts": '["end_image_url", "audio_url"]'},
            "engine 'my-wan21' takes no audio input: audio_url",
        ),
        (
            {"engine": '"my-wan99"'},
            "engine 'my-wan99': unknown diffusers family 'wan99'; "
            "known: wan21, wan22, wan22-ti2v, ltx2",
        ),
        (
            {"engine": '"preview"', "fps": "24", "constraints_audio": "true"}
            | {"audio_request": '"refuse"'},
            'audio_request = "refuse" is for a model without sound (audio = false)',
        ),
    ],
)
def test_a_model_asking_what_its_engine_cannot_do_is_refused_at_load(
    tmp_path: Path, changes: dict[str, str], problem: str
) -> None:
    assert refusal(overlay(tmp_path, **changes)) == f"my-wan: {problem}"


def test_every_problem_of_a_model_is_named(tmp_path: Path) -> None:
    path = overlay(tmp_path, fps="24", constraints_durations='["10s"]')
    assert refusal(path) == (
        "my-wan: fps 24 is not the native rate of engine 'my-wan21' (set fps = 16); "
        "my-wan: engine 'my-wan21' renders at most 81 frames: durations ['10s'] are longer"
    )


def test_venices_wan_2_1_id_binds_once_its_6_s_is_brought_to_5_s(tmp_path: Path) -> None:
    """The binding docs/engines.md shows: Venice lists Wan 2.1 Pro with 6 s, 97 frames at
    16 fps, more than the 81 the model is trained for."""
    path = tmp_path / "catalog.toml"
    binding = '[models."wan-2.1-pro-image-to-video"]\nengine = "my-wan21"\nfps = 16\n'
    path.write_text(binding)
    assert refusal(path) == (
        "wan-2.1-pro-image-to-video: engine 'my-wan21' renders at most 81 frames: "
        "durations ['6s'] are longer"
    )
    path.write_text(
        binding + '[models."wan-2.1-pro-image-to-video".constraints]\ndurations = ["5s"]\n'
    )
    entry = load_catalog(path, engines=ENGINES).get("wan-2.1-pro-image-to-video")
    assert entry.constraints.durations == ("5s",)


def test_a_model_bound_to_an_operators_own_engine_is_trusted(tmp_path: Path) -> None:
    engines = engine_factories({"mine": "my_pkg.engine:MyEngine"})
    path = overlay(tmp_path, engine='"mine"', fps="30", constraints_durations='["30s"]')
    assert load_catalog(path, engines=engines).get("my-wan").fps == 30


def test_the_binding_docs_engines_md_shows_loads(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "docs" / "engines.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, re.DOTALL)
    settings = next(b for b in blocks if b.startswith("catalog_path"))
    catalogue = next(b for b in blocks if "[models." in b and 'engine = "wan21' in b)
    path = tmp_path / "catalog.toml"
    path.write_text(catalogue.replace('# audio_request = "refuse"', 'audio_request = "refuse"'))
    engines = engine_factories(tomllib.loads(settings)["engines"])
    catalog = load_catalog(path, engines=engines)
    assert catalog.get("my-wan-2.1-1.3b").audio_request == "refuse"
    assert catalog.get("wan-2.1-pro-image-to-video").engine == "wan21-i2v-720p"
