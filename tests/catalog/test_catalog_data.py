"""Checks of the model catalogue data in `src/videoqueue/catalog/models.toml`.

The data transcribes Venice's `/models?type=video` snapshot of 2026-08-20 (spec §10.1) plus
family rules (§11) and published prices (§12, checked exactly through `/video/quote` in
tests/api/test_quote.py). These tests pin what the spec states as facts:
the exact listed ids, the value enums of §4.1 and the counts of §10.1.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from videoqueue.catalog.entry import (
    MEDIA_FIELDS,
    REQUIREMENTS,
    Family,
    ModelEntry,
    PerGenerationPrice,
    PerSecondPrice,
    UpscalePrice,
)

# Spec §10.1: the 116 video model ids of the 2026-08-20 snapshot, sorted.
LISTED_IDS = (
    "flux-3-first-last-frame-to-video",
    "flux-3-image-to-video",
    "flux-3-text-to-video",
    "gemini-omni-flash-image-to-video",
    "gemini-omni-flash-reference-to-video",
    "gemini-omni-flash-text-to-video",
    "grok-imagine-1-5-image-to-video-private",
    "grok-imagine-1-5-reference-to-video-private",
    "grok-imagine-1-5-text-to-video-private",
    "grok-imagine-image-to-video-private",
    "grok-imagine-reference-to-video-private",
    "grok-imagine-text-to-video-private",
    "grok-imagine-video-to-video-private",
    "happyhorse-1-0-image-to-video",
    "happyhorse-1-0-reference-to-video",
    "happyhorse-1-0-text-to-video",
    "happyhorse-1-0-video-to-video",
    "happyhorse-1-1-image-to-video",
    "happyhorse-1-1-reference-to-video",
    "happyhorse-1-1-text-to-video",
    "kling-2.5-turbo-pro-image-to-video",
    "kling-2.5-turbo-pro-text-to-video",
    "kling-2.6-pro-image-to-video",
    "kling-2.6-pro-text-to-video",
    "kling-o3-4k-image-to-video",
    "kling-o3-4k-reference-to-video",
    "kling-o3-4k-text-to-video",
    "kling-o3-pro-image-to-video",
    "kling-o3-pro-reference-to-video",
    "kling-o3-pro-text-to-video",
    "kling-o3-standard-image-to-video",
    "kling-o3-standard-reference-to-video",
    "kling-o3-standard-text-to-video",
    "kling-v3-4k-reference-to-video",
    "kling-v3-4k-text-to-video",
    "kling-v3-pro-image-to-video",
    "kling-v3-pro-motion-control",
    "kling-v3-pro-text-to-video",
    "kling-v3-standard-image-to-video",
    "kling-v3-standard-motion-control",
    "kling-v3-standard-text-to-video",
    "kling-v3-turbo-pro-image-to-video",
    "kling-v3-turbo-pro-text-to-video",
    "kling-v3-turbo-standard-image-to-video",
    "kling-v3-turbo-standard-text-to-video",
    "longcat-distilled-image-to-video",
    "longcat-distilled-text-to-video",
    "longcat-image-to-video",
    "longcat-text-to-video",
    "ltx-2-5-fast-image-to-video",
    "ltx-2-5-fast-text-to-video",
    "ltx-2-5-pro-image-to-video",
    "ltx-2-5-pro-text-to-video",
    "ltx-2-v2-3-fast-image-to-video",
    "ltx-2-v2-3-fast-text-to-video",
    "ltx-2-v2-3-full-image-to-video",
    "ltx-2-v2-3-full-text-to-video",
    "minimax-h3-enhanced-reference-to-video",
    "minimax-h3-enhanced-text-to-video",
    "minimax-h3-image-to-video",
    "minimax-h3-reference-to-video",
    "minimax-h3-text-to-video",
    "ovi-image-to-video",
    "pixverse-c1-image-to-video",
    "pixverse-c1-reference-to-video",
    "pixverse-c1-text-to-video",
    "pixverse-c1-transition",
    "pixverse-v5.6-image-to-video",
    "pixverse-v5.6-text-to-video",
    "pixverse-v5.6-transition",
    "runway-gen4-5",
    "runway-gen4-5-text",
    "runway-gen4-turbo",
    "seedance-1-5-pro-image-to-video-basic",
    "seedance-1-5-pro-text-to-video-basic",
    "seedance-2-0-fast-image-to-video-basic",
    "seedance-2-0-fast-reference-to-video-basic",
    "seedance-2-0-fast-text-to-video-basic",
    "seedance-2-0-image-to-video-basic",
    "seedance-2-0-mini-image-to-video-basic",
    "seedance-2-0-mini-reference-to-video-basic",
    "seedance-2-0-mini-text-to-video-basic",
    "seedance-2-0-reference-to-video-basic",
    "seedance-2-0-text-to-video-basic",
    "seedance-2-5-image-to-video-basic",
    "seedance-2-5-reference-to-video-basic",
    "seedance-2-5-text-to-video-basic",
    "sora-2-image-to-video",
    "sora-2-pro-image-to-video",
    "sora-2-pro-text-to-video",
    "sora-2-text-to-video",
    "topaz-video-upscale",
    "veo3-fast-image-to-video",
    "veo3-fast-text-to-video",
    "veo3-full-image-to-video",
    "veo3-full-text-to-video",
    "veo3.1-fast-image-to-video",
    "veo3.1-fast-text-to-video",
    "veo3.1-full-image-to-video",
    "veo3.1-full-text-to-video",
    "vidu-q3-image-to-video",
    "vidu-q3-text-to-video",
    "wan-2-2-enhanced-image-to-video",
    "wan-2-7-enhanced-image-to-video",
    "wan-2-7-enhanced-text-to-video",
    "wan-2-7-image-to-video",
    "wan-2-7-reference-to-video",
    "wan-2-7-text-to-video",
    "wan-2-7-video-to-video",
    "wan-2.1-pro-image-to-video",
    "wan-2.2-a14b-text-to-video",
    "wan-2.5-preview-image-to-video",
    "wan-2.5-preview-text-to-video",
    "wan-2.6-flash-image-to-video",
    "wan-2.6-image-to-video",
    "wan-2.6-text-to-video",
)

# Spec §11.2: face-eligible Seedance ids that /models does not list (plus the unlisted T2V twin).
UNLISTED_IDS = {
    "seedance-2-0-text-to-video": "seedance-2-0-text-to-video-basic",
    "seedance-2-0-image-to-video": "seedance-2-0-image-to-video-basic",
    "seedance-2-0-reference-to-video": "seedance-2-0-reference-to-video-basic",
    "seedance-2-0-fast-image-to-video": "seedance-2-0-fast-image-to-video-basic",
    "seedance-2-0-fast-reference-to-video": "seedance-2-0-fast-reference-to-video-basic",
}

# Spec §4.1: the request enums every catalogue value must come from.
DURATIONS = frozenset({f"{n}s" for n in range(1, 31)} | {"-1", "1 gen", "auto", "Auto"})
ASPECT_RATIOS = frozenset(
    {"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "9:21", "16:9", "21:9"}
    | {"adaptive", "auto"}
)
RESOLUTIONS = frozenset(
    {"256p", "360p", "480p", "540p", "580p", "720p", "1080p", "1440p", "2160p", "4k"}
    | {"2x", "4x", "2K", "768P", "true_1080p"}
)
REQUIREMENT_NAMES = frozenset(MEDIA_FIELDS) | set(REQUIREMENTS)


@cache
def _raw() -> dict[str, Any]:
    resource = resources.files("videoqueue.catalog").joinpath("models.toml")
    return tomllib.loads(resource.read_text(encoding="utf-8"))


@cache
def _families() -> dict[str, Family]:
    return {name: Family.model_validate(data) for name, data in _raw()["families"].items()}


@cache
def _models() -> dict[str, ModelEntry]:
    return {
        model_id: ModelEntry.model_validate({**data, "id": model_id})
        for model_id, data in _raw()["models"].items()
    }


def _listed() -> dict[str, ModelEntry]:
    return {model_id: m for model_id, m in _models().items() if m.listed}


def _per_second(model: ModelEntry) -> Iterator[tuple[str, dict[str, float]]]:
    price = model.price
    if isinstance(price, PerSecondPrice):
        yield "rates", price.rates
        if price.reference_video_rates is not None:
            yield "reference_video_rates", price.reference_video_rates


def test_top_level_tables() -> None:
    assert set(_raw()) == {"families", "models"}


def test_every_family_validates() -> None:
    assert _families()


def test_every_model_validates() -> None:
    for model_id, data in _raw()["models"].items():
        assert "id" not in data, f"{model_id}: the id comes from the table key"
    assert len(_models()) == len(_raw()["models"])


def test_listed_ids_are_exactly_the_snapshot() -> None:
    assert tuple(sorted(set(LISTED_IDS))) == LISTED_IDS
    assert len(LISTED_IDS) == 116
    assert sorted(_listed()) == list(LISTED_IDS)


def test_unlisted_face_consent_ids() -> None:
    unlisted = {model_id: m for model_id, m in _models().items() if not m.listed}
    assert set(unlisted) == set(UNLISTED_IDS)
    for model_id, twin_id in UNLISTED_IDS.items():
        model, twin = unlisted[model_id], _models()[twin_id]
        assert model.constraints == twin.constraints, model_id
        assert model.price == twin.price, model_id
        assert (model.requires, model.accepts) == (twin.requires, twin.accepts), model_id
        assert model.family is not None
        family = _families()[model.family]
        # Text-to-video has no media, so it never enters the consent flow (§11.2).
        assert family.face_consent is (model.constraints.model_type != "text-to-video"), model_id
    assert not any(
        _families()[m.family].face_consent for m in _listed().values() if m.family is not None
    )


def test_named_families_exist_and_are_used() -> None:
    used = {m.family for m in _models().values() if m.family is not None}
    assert used <= set(_families())
    assert set(_families()) <= used, "unused family"


def test_requires_and_accepts_are_known_fields() -> None:
    for model_id, m in _models().items():
        assert set(m.requires) <= REQUIREMENT_NAMES, model_id
        assert set(m.accepts) <= set(MEDIA_FIELDS), model_id
        assert len(set(m.requires)) == len(m.requires), model_id
        assert len(set(m.accepts)) == len(m.accepts), model_id
        assert not set(m.requires) & set(m.accepts), model_id


def test_requires_follow_model_type() -> None:
    for model_id, m in _models().items():
        kind = m.constraints.model_type
        if kind == "text-to-video":
            assert m.requires == (), model_id
        elif kind == "video":
            assert m.requires == ("video_url",), model_id
        else:
            assert m.requires, model_id
        if m.constraints.audio_input:
            assert "audio_url" in m.accepts, model_id
        for need in set(m.requires) & set(REQUIREMENTS):
            fields, _ = REQUIREMENTS[need]
            assert set(fields) & set(m.accepts), (model_id, need)
        if "visual" in m.requires:
            assert m.family is not None and _families()[m.family].max_visual_inputs, model_id


def test_values_are_within_venice_enums() -> None:
    for model_id, m in _models().items():
        c = m.constraints
        assert c.durations, model_id
        assert set(c.durations) <= DURATIONS, model_id
        assert set(c.resolutions) <= RESOLUTIONS, model_id
        assert set(c.aspect_ratios) <= ASPECT_RATIOS, model_id
        for values in (c.durations, c.resolutions, c.aspect_ratios):
            assert len(set(values)) == len(values), model_id
        if m.default_resolution is not None:
            assert m.default_resolution in c.resolutions, model_id
            assert "720p" not in c.resolutions, model_id
    for name, family in _families().items():
        assert set(family.source_matched_durations) <= DURATIONS, name
        assert set(family.source_matched_aspect_ratios) <= ASPECT_RATIOS, name


def test_constraint_flags_are_consistent() -> None:
    for model_id, m in _models().items():
        c = m.constraints
        if c.audio_configurable:
            assert c.audio, model_id
        assert ("audio" in m.model_sets) is c.audio, model_id
        assert ("uncensored" in m.model_sets) is m.uncensored, model_id
        if c.model_type != "video":
            assert not c.video_input, model_id
        if c.prompt_character_limit is not None:
            assert c.prompt_character_limit != 2500, model_id


def test_counts_from_the_spec() -> None:
    listed = _listed().values()
    assert sum(m.privacy == "private" for m in listed) == 14
    assert sum(m.privacy == "anonymized" for m in listed) == 102
    assert sum(m.uncensored for m in listed) == 26
    assert sum(m.deprecation is not None for m in listed) == 4
    assert sum(not m.constraints.aspect_ratios for m in listed) == 41


def test_deprecated_models_are_sora_2() -> None:
    deprecated = {model_id for model_id, m in _models().items() if m.deprecation is not None}
    assert deprecated == {
        "sora-2-image-to-video",
        "sora-2-text-to-video",
        "sora-2-pro-image-to-video",
        "sora-2-pro-text-to-video",
    }
    for model_id in deprecated:
        deprecation = _models()[model_id].deprecation
        assert deprecation is not None
        assert (deprecation.date, deprecation.removesAt) == ("2026-09-24", "2026-09-24")


def test_private_download_url_delivery() -> None:
    download = {m_id for m_id, m in _models().items() if m.delivery == "download_url"}
    assert download == {
        "grok-imagine-text-to-video-private",
        "grok-imagine-image-to-video-private",
        "grok-imagine-video-to-video-private",
        "grok-imagine-reference-to-video-private",
        "grok-imagine-1-5-text-to-video-private",
        "grok-imagine-1-5-image-to-video-private",
        "grok-imagine-1-5-reference-to-video-private",
    }
    assert all(_models()[m_id].privacy == "private" for m_id in download)


def test_reference_families() -> None:
    for model_id, m in _models().items():
        family = _families()[m.family] if m.family is not None else None
        if family is None:
            continue
        if family.reference_images_max:
            assert {"reference", "reference_image"} & set(m.requires), model_id
        if family.reference_videos or family.reference_audios:
            assert {"reference_video_urls", "reference_audio_urls"} <= set(m.accepts), model_id
        if family.audio_url_is_reference:
            assert "audio_url" in m.accepts and family.reference_audios, model_id
        if family.elements_max or family.scene_images_max:
            assert {"elements", "scene_image_urls"} <= set(m.accepts), model_id
        for tag, field in family.prompt_references.items():
            assert tag.startswith("@") and field in m.accepts, (model_id, tag)


def test_family_limits_from_the_spec() -> None:
    families = _families()
    # §11.1: Seedance 2.0 R2V 1-9 images, <= 3 videos and audios; 2.5 up to the schema's 30 / 10.
    for name in ("seedance-2-0-r2v", "seedance-2-0-r2v-consent"):
        family = families[name]
        assert family.reference_images_max == 9
        assert family.reference_videos is not None and family.reference_videos.max_items == 3
        assert family.reference_audios is not None and family.reference_audios.max_items == 3
    seedance_25 = families["seedance-2-5-r2v"]
    assert seedance_25.reference_images_max is None
    assert seedance_25.reference_videos is not None and seedance_25.reference_videos.max_items == 10
    assert seedance_25.source_matched_durations == ("-1", "auto")
    # §11.4: Kling O3 R2V.
    kling = families["kling-o3-r2v"]
    assert (
        kling.elements_max,
        kling.scene_images_max,
        kling.max_visual_inputs,
        kling.elements_max_with_frame,
    ) == (4, 4, 7, 3)
    assert kling.prompt_references == {"@Element": "elements", "@Image": "scene_image_urls"}
    # §11.5: Grok Imagine R2V, 1-7 images only.
    assert families["grok-r2v"].reference_images_max == 7
    for model_id in (
        "grok-imagine-reference-to-video-private",
        "grok-imagine-1-5-reference-to-video-private",
    ):
        model = _models()[model_id]
        assert (model.requires, model.accepts) == (("reference_image",), ("reference_image_urls",))


def test_only_seedance_text_to_video_requires_aspect_ratio() -> None:
    required = {model_id for model_id, m in _models().items() if m.aspect_ratio_required}
    assert required == {
        "seedance-1-5-pro-text-to-video-basic",
        "seedance-2-0-text-to-video-basic",
        "seedance-2-0-fast-text-to-video-basic",
        "seedance-2-0-mini-text-to-video-basic",
        "seedance-2-5-text-to-video-basic",
        "seedance-2-0-text-to-video",
    }
    for model_id in required:  # the list of Venice's captured 400 (spec §3.1)
        ratios = _models()[model_id].constraints.aspect_ratios
        assert ratios == ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16"), model_id


def test_only_the_upscaler_uses_the_upscale_engine() -> None:
    engines = {model_id: m.engine for model_id, m in _models().items() if m.engine != "preview"}
    assert engines == {"topaz-video-upscale": "upscale"}


def test_prices_cover_every_resolution() -> None:
    for model_id, m in _models().items():
        price = m.price
        if isinstance(price, UpscalePrice):
            assert m.engine == "upscale", model_id
            assert m.upscale is not None, model_id
            heights = [t.max_height for t in price.tiers]
            assert heights[-1] is None, model_id
            bounded = [h for h in heights[:-1] if h is not None]
            assert len(bounded) == len(heights) - 1, model_id
            assert bounded == sorted(bounded), model_id
            assert all(t.rate > 0 for t in price.tiers), model_id
            continue
        assert m.upscale is None, model_id
        if isinstance(price, PerGenerationPrice):
            assert price.amount > 0, model_id
            continue
        for label, rates in _per_second(m):
            assert rates, (model_id, label)
            assert all(rate > 0 for rate in rates.values()), (model_id, label)
            if "*" in rates:
                continue
            missing = set(m.constraints.resolutions) - set(rates)
            assert not missing, (model_id, label, missing)
            assert m.constraints.resolutions, (model_id, label, "no resolutions: use '*'")
        assert isinstance(price, PerSecondPrice)
        if not m.constraints.audio_configurable:
            assert price.audio_multiplier == 1.0, model_id
        else:
            assert price.audio_multiplier >= 1.0, model_id
