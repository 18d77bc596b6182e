"""Family rules and the order of Venice's answers, through the real `/video/queue`.

Each case is one request and the exact status and body Venice answers it with (spec §3.1,
§4.1, §11). The catalogue-wide table is `test_validation_catalogue.py`; these are the rules
that need several fields at once.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.catalog.cases import (
    PROMPT,
    custom_issue,
    detailed,
    enum_issue,
    image_data_url,
    literal_issue,
    mp4_data_url,
    plain,
    required_issue,
    too_big_issue,
    type_issue,
    wav_data_url,
)
from tests.conftest import Env
from videoqueue.billing.models import Account, LedgerEntry, LedgerKind

KLING = "kling-o3-pro-reference-to-video"
GROK = "grok-imagine-reference-to-video-private"
SEEDANCE_R2V = "seedance-2-0-reference-to-video-basic"
SEEDANCE_25_R2V = "seedance-2-5-reference-to-video-basic"
SEEDANCE_I2V = "seedance-2-0-image-to-video-basic"
SEEDANCE_T2V = "seedance-2-0-text-to-video-basic"
SEEDANCE_CONSENT = "seedance-2-0-image-to-video"
WAN_I2V = "wan-2.6-image-to-video"
UPSCALE = "topaz-video-upscale"
CONSENTS = {
    "confirmed_terms_and_privacy": True,
    "confirmed_legal_right": True,
    "confirmed_screening_acknowledged": True,
}
OK: dict[str, Any] = {}


def images(n: int) -> list[str]:
    return [image_data_url()] * n


def element(**extra: Any) -> dict[str, Any]:
    return {"frontal_image_url": image_data_url(), **extra}


def kling(**fields: Any) -> dict[str, Any]:
    return {"model": KLING, "prompt": PROMPT, "duration": "5s", "aspect_ratio": "16:9", **fields}


def grok(**fields: Any) -> dict[str, Any]:
    return {"model": GROK, "prompt": PROMPT, "duration": "5s", "aspect_ratio": "16:9", **fields}


def seedance_r2v(model: str = SEEDANCE_R2V, **fields: Any) -> dict[str, Any]:
    return {
        "model": model,
        "prompt": PROMPT,
        "duration": "5s",
        "aspect_ratio": "16:9",
        "resolution": "480p",
        **fields,
    }


def seedance_i2v(**fields: Any) -> dict[str, Any]:
    return {
        "model": SEEDANCE_I2V,
        "prompt": PROMPT,
        "duration": "5s",
        "resolution": "480p",
        "image_url": image_data_url(),
        **fields,
    }


SEEDANCE_RATIOS = "'21:9' | '16:9' | '4:3' | '1:1' | '3:4' | '9:16'"
VISUAL = (
    "At least one visual input (image_url, elements or scene_image_urls) is required for this model"
)
TOO_MANY_IMAGES = plain("Number of images exceeds the limit")
PAIRING = "Reference audio must be paired with at least one reference image or reference video"

# (test id, request body, status, expected body)
CASES: list[tuple[str, dict[str, Any], int, dict[str, Any]]] = [
    # -- the model field (plain messages, spec §3.1) ---------------------------------------
    ("model-missing", {"prompt": PROMPT}, 400, plain("model is required")),
    ("model-not-a-string", {"model": 5}, 400, plain("model must be a string")),
    (
        "model-unknown",
        {"model": "sora-9"},
        400,
        {"error": "Invalid model specified", "code": "INVALID_MODEL"},
    ),
    # -- Venice's captured 400 (spec §3.1), verbatim ---------------------------------------
    (
        "seedance-t2v-aspect-ratio-required",
        {"model": SEEDANCE_T2V, "prompt": PROMPT, "duration": "5s"},
        400,
        {
            "error": "Invalid request parameters",
            "details": {"_errors": [], "aspect_ratio": {"_errors": ["Required"]}},
            "issues": [
                {
                    "expected": SEEDANCE_RATIOS,
                    "received": "undefined",
                    "code": "invalid_type",
                    "path": ["aspect_ratio"],
                    "message": "Required",
                }
            ],
        },
    ),
    (
        "seedance-t2v-aspect-ratio-unknown",
        {"model": SEEDANCE_T2V, "prompt": PROMPT, "duration": "5s", "aspect_ratio": "99:1"},
        400,
        {
            "error": "Invalid request parameters",
            "details": {
                "_errors": [],
                "aspect_ratio": {
                    "_errors": [f"Invalid enum value. Expected {SEEDANCE_RATIOS}, received '99:1'"]
                },
            },
            "issues": [
                {
                    "code": "invalid_enum_value",
                    "expected": SEEDANCE_RATIOS,
                    "received": "99:1",
                    "options": ["21:9", "16:9", "4:3", "1:1", "3:4", "9:16"],
                    "path": ["aspect_ratio"],
                    "message": f"Invalid enum value. Expected {SEEDANCE_RATIOS}, received '99:1'",
                }
            ],
        },
    ),
    (
        "seedance-i2v-refuses-aspect-ratio",
        seedance_i2v(aspect_ratio="16:9"),
        400,
        plain("This model does not support aspect_ratio"),
    ),
    ("seedance-i2v-takes-an-end-frame", seedance_i2v(end_image_url=image_data_url()), 200, OK),
    # -- order: refused fields, then the schema (all issues at once), then cross-field rules
    (
        "refused-field-before-schema",
        {"model": SEEDANCE_I2V, "duration": "99s", "aspect_ratio": "16:9"},
        400,
        plain("This model does not support aspect_ratio"),
    ),
    (
        "schema-issues-together-in-schema-order",
        {"model": WAN_I2V, "duration": "6s", "resolution": "480p", "audio": "on"},
        400,
        detailed(
            required_issue(["prompt"]),
            enum_issue(["duration"], ["5s", "10s", "15s"], "6s"),
            enum_issue(["resolution"], ["1080p", "720p"], "480p"),
            type_issue(["audio"], "boolean", "string"),
            required_issue(["image_url"]),
        ),
    ),
    (
        "schema-before-cross-field-rules",
        grok(prompt="", reference_image_urls=[]),
        400,
        detailed(
            {
                "code": "too_small",
                "minimum": 1,
                "type": "string",
                "inclusive": True,
                "exact": False,
                "path": ["prompt"],
                "message": "String must contain at least 1 character(s)",
            }
        ),
    ),
    (
        "null-media-is-a-type-issue",
        seedance_i2v(image_url=None),
        400,
        detailed(type_issue(["image_url"], "string", "null")),
    ),
    (
        "refused-reference-documents",
        seedance_i2v(reference_document_urls=["https://x.org/a.pdf"]),
        400,
        plain("This model does not support reference_document_urls"),
    ),
    # -- audio: honoured where configurable, accepted (ignored) elsewhere ------------------
    (
        "audio-on-a-model-without-audio",
        {"model": "wan-2-7-text-to-video", "prompt": PROMPT, "duration": "5s", "audio": True},
        200,
        OK,
    ),
    # -- Kling O3 R2V (spec §11.4) ----------------------------------------------------------
    ("kling-needs-a-visual-input", kling(), 400, plain(VISUAL)),
    (
        "kling-end-frame-alone-is-not-enough",
        kling(end_image_url=image_data_url()),
        400,
        plain(VISUAL),
    ),
    ("kling-start-frame", kling(image_url=image_data_url()), 200, OK),
    ("kling-scene-image", kling(scene_image_urls=images(1)), 200, OK),
    ("kling-video-element", kling(elements=[element(video_url=mp4_data_url())]), 200, OK),
    (
        "kling-five-elements",
        kling(elements=[element()] * 5),
        400,
        detailed(too_big_issue(["elements"], 4, "array")),
    ),
    (
        "kling-five-scene-images",
        kling(scene_image_urls=images(5)),
        400,
        detailed(too_big_issue(["scene_image_urls"], 4, "array")),
    ),
    (
        "kling-four-elements-and-a-start-frame",
        kling(elements=[element()] * 4, image_url=image_data_url()),
        400,
        TOO_MANY_IMAGES,
    ),
    (
        "kling-four-elements-and-an-end-frame",
        kling(elements=[element()] * 4, end_image_url=image_data_url()),
        400,
        TOO_MANY_IMAGES,
    ),
    (
        "kling-three-elements-and-both-frames",
        kling(
            elements=[element()] * 3,
            image_url=image_data_url(),
            end_image_url=image_data_url(),
            scene_image_urls=images(2),
        ),
        200,
        OK,
    ),
    (
        "kling-eight-images-with-frames",
        kling(
            elements=[element()] * 3,
            image_url=image_data_url(),
            end_image_url=image_data_url(),
            scene_image_urls=images(3),
        ),
        400,
        TOO_MANY_IMAGES,
    ),
    (
        "kling-four-elements-four-scenes",
        kling(elements=[element()] * 4, scene_image_urls=images(4)),
        400,
        TOO_MANY_IMAGES,
    ),
    (
        "kling-four-elements-three-scenes",
        kling(elements=[element()] * 4, scene_image_urls=images(3)),
        200,
        OK,
    ),
    (
        "kling-element-without-frontal-image",
        kling(elements=[{"video_url": mp4_data_url()}]),
        400,
        detailed(required_issue(["elements", 0, "frontal_image_url"])),
    ),
    (
        "kling-element-with-four-angles",
        kling(elements=[element(reference_image_urls=images(4))]),
        400,
        detailed(too_big_issue(["elements", 0, "reference_image_urls"], 3, "array")),
    ),
    (
        "kling-element-not-an-object",
        kling(elements=["front.png"]),
        400,
        detailed(type_issue(["elements", 0], "object", "string")),
    ),
    (
        "kling-prompt-names-a-missing-element",
        kling(prompt="@Element1 meets @Element2", elements=[element()]),
        400,
        plain("The prompt refers to @Element2, but elements has 1 item(s)"),
    ),
    (
        "kling-prompt-names-a-missing-scene",
        kling(prompt="@Element1 in @Image1", elements=[element()]),
        400,
        plain("The prompt refers to @Image1, but scene_image_urls has 0 item(s)"),
    ),
    (
        "kling-prompt-tags-all-supplied",
        kling(
            prompt="@Element1 and @Element2 walk through @Image2",
            elements=[element(reference_image_urls=images(3)), element()],
            scene_image_urls=images(2),
        ),
        200,
        OK,
    ),
    # -- Grok Imagine R2V (spec §11.5) ------------------------------------------------------
    (
        "grok-needs-a-reference-image",
        grok(),
        400,
        plain("At least one reference image is required"),
    ),
    (
        "grok-refuses-reference-videos",
        grok(reference_video_urls=[mp4_data_url()]),
        400,
        plain("This model does not support reference_video_urls"),
    ),
    ("grok-seven-images", grok(prompt="@Image7 waves", reference_image_urls=images(7)), 200, OK),
    (
        "grok-eight-images",
        grok(reference_image_urls=images(8)),
        400,
        detailed(too_big_issue(["reference_image_urls"], 7, "array")),
    ),
    (
        "grok-prompt-names-a-missing-image",
        grok(prompt="@Image3 dances", reference_image_urls=images(2)),
        400,
        plain("The prompt refers to @Image3, but reference_image_urls has 2 item(s)"),
    ),
    # -- Seedance R2V (spec §11.1) ----------------------------------------------------------
    (
        "seedance-r2v-needs-a-reference",
        seedance_r2v(),
        400,
        plain("At least one reference is required for this model"),
    ),
    (
        "seedance-r2v-video-reference-alone",
        seedance_r2v(reference_video_urls=[mp4_data_url()]),
        200,
        OK,
    ),
    (
        "seedance-r2v-ten-images",
        seedance_r2v(reference_image_urls=images(10)),
        400,
        detailed(too_big_issue(["reference_image_urls"], 9, "array")),
    ),
    (
        "seedance-r2v-four-videos",
        seedance_r2v(reference_video_urls=[mp4_data_url()] * 4),
        400,
        detailed(too_big_issue(["reference_video_urls"], 3, "array")),
    ),
    (
        "seedance-r2v-four-audios",
        seedance_r2v(reference_image_urls=images(1), reference_audio_urls=[wav_data_url()] * 4),
        400,
        detailed(too_big_issue(["reference_audio_urls"], 3, "array")),
    ),
    (
        "seedance-r2v-audio-only",
        seedance_r2v(reference_audio_urls=[wav_data_url()]),
        400,
        detailed(custom_issue(["reference_audio_urls"], PAIRING)),
    ),
    (
        "seedance-r2v-audio-url-only",
        seedance_r2v(audio_url=wav_data_url()),
        400,
        detailed(custom_issue(["reference_audio_urls"], PAIRING)),
    ),
    (
        "seedance-r2v-audio-url-counts-as-reference-audio",
        seedance_r2v(
            reference_image_urls=images(1),
            reference_audio_urls=[wav_data_url()] * 3,
            audio_url=wav_data_url(),
        ),
        400,
        detailed(
            custom_issue(["reference_audio_urls"], "At most 3 reference audios, audio_url included")
        ),
    ),
    (
        "seedance-r2v-image-and-audio",
        seedance_r2v(reference_image_urls=images(1), reference_audio_urls=[wav_data_url()]),
        200,
        OK,
    ),
    (
        "seedance-r2v-adaptive-needs-a-video",
        seedance_r2v(aspect_ratio="adaptive", reference_image_urls=images(1)),
        400,
        plain("aspect_ratio 'adaptive' follows the source clip: it needs reference_video_urls"),
    ),
    (
        "seedance-r2v-adaptive-with-a-video",
        seedance_r2v(aspect_ratio="adaptive", reference_video_urls=[mp4_data_url()]),
        200,
        OK,
    ),
    (
        "seedance-2-0-has-no-source-matched-duration",
        seedance_r2v(duration="-1", reference_video_urls=[mp4_data_url()]),
        400,
        detailed(enum_issue(["duration"], [f"{n}s" for n in range(4, 16)], "-1")),
    ),
    (
        "seedance-r2v-bitrate-mode",
        seedance_r2v(reference_image_urls=images(1), bitrate_mode="high"),
        200,
        OK,
    ),
    (
        "seedance-r2v-bitrate-mode-unknown",
        seedance_r2v(reference_image_urls=images(1), bitrate_mode="ultra"),
        400,
        detailed(enum_issue(["bitrate_mode"], ["standard", "high"], "ultra")),
    ),
    (
        "seedance-2-0-refuses-task-type",
        seedance_r2v(reference_image_urls=images(1), omni_reference_task_type="edit"),
        400,
        plain("This model does not support omni_reference_task_type"),
    ),
    (
        "seedance-2-5-source-matched-duration",
        seedance_r2v(SEEDANCE_25_R2V, duration="-1", reference_video_urls=[mp4_data_url(5.0)]),
        200,
        OK,
    ),
    (
        "seedance-2-5-auto-duration-needs-a-video",
        seedance_r2v(SEEDANCE_25_R2V, duration="auto", reference_image_urls=images(1)),
        400,
        plain("duration 'auto' follows the source clip: it needs reference_video_urls"),
    ),
    (
        "seedance-2-5-task-type-alias",
        seedance_r2v(
            SEEDANCE_25_R2V,
            omni_reference_task_type="editing",
            reference_video_urls=[mp4_data_url()],
        ),
        200,
        OK,
    ),
    (
        "seedance-2-5-task-type-unknown",
        seedance_r2v(
            SEEDANCE_25_R2V, omni_reference_task_type="remix", reference_image_urls=images(1)
        ),
        400,
        detailed(
            enum_issue(
                ["omni_reference_task_type"], ["auto", "reference", "edit", "extend"], "remix"
            )
        ),
    ),
    (
        "seedance-2-5-thirty-images",
        seedance_r2v(SEEDANCE_25_R2V, reference_image_urls=images(30)),
        200,
        OK,
    ),
    (
        "seedance-2-5-thirty-one-images",
        seedance_r2v(SEEDANCE_25_R2V, reference_image_urls=images(31)),
        400,
        detailed(too_big_issue(["reference_image_urls"], 30, "array")),
    ),
    # -- consents (spec §11.2): each flag literally true, nothing else --------------------
    ("consents-accepted", seedance_i2v(consents={"seedance": CONSENTS}), 200, OK),
    ("consents-empty", seedance_i2v(consents={}), 200, OK),
    (
        "consents-on-a-consent-model",
        {**seedance_i2v(consents={"seedance": CONSENTS}), "model": SEEDANCE_CONSENT},
        200,
        OK,
    ),
    (
        "consents-flag-missing",
        seedance_i2v(
            consents={
                "seedance": {k: v for k, v in CONSENTS.items() if k != "confirmed_legal_right"}
            }
        ),
        400,
        detailed(literal_issue(["consents", "seedance", "confirmed_legal_right"], None)),
    ),
    (
        "consents-flag-false",
        seedance_i2v(consents={"seedance": {**CONSENTS, "confirmed_legal_right": False}}),
        400,
        detailed(literal_issue(["consents", "seedance", "confirmed_legal_right"], False)),
    ),
    (
        "consents-flag-a-string",
        seedance_i2v(consents={"seedance": {**CONSENTS, "confirmed_terms_and_privacy": "true"}}),
        400,
        detailed(literal_issue(["consents", "seedance", "confirmed_terms_and_privacy"], "true")),
    ),
    (
        "consents-extra-key",
        seedance_i2v(consents={"seedance": {**CONSENTS, "consent_version": "v2.0"}}),
        400,
        detailed(
            {
                "code": "unrecognized_keys",
                "keys": ["consent_version"],
                "path": ["consents", "seedance"],
                "message": "Unrecognized key(s) in object: 'consent_version'",
            }
        ),
    ),
    (
        "consents-other-provider",
        seedance_i2v(consents={"kling": {}}),
        400,
        detailed(
            {
                "code": "unrecognized_keys",
                "keys": ["kling"],
                "path": ["consents"],
                "message": "Unrecognized key(s) in object: 'kling'",
            }
        ),
    ),
    (
        "consents-not-an-object",
        seedance_i2v(consents=True),
        400,
        detailed(type_issue(["consents"], "object", "boolean")),
    ),
    # -- upscale (spec §11.3) ---------------------------------------------------------------
    ("upscale-minimal", {"model": UPSCALE, "video_url": mp4_data_url()}, 200, OK),
    (
        "upscale-ignores-prompt-and-duration",
        {
            "model": UPSCALE,
            "video_url": mp4_data_url(),
            "prompt": "sharper",
            "duration": "Auto",
            "upscale_factor": 4,
        },
        200,
        OK,
    ),
    (
        "upscale-duration-not-a-string",
        {"model": UPSCALE, "video_url": mp4_data_url(), "duration": 10},
        400,
        detailed(type_issue(["duration"], "string", "number")),
    ),
    (
        "upscale-needs-a-video",
        {"model": UPSCALE, "upscale_factor": 2},
        400,
        detailed(required_issue(["video_url"])),
    ),
    (
        "upscale-empty-video-url",
        {"model": UPSCALE, "video_url": ""},
        400,
        detailed(
            {
                "code": "too_small",
                "minimum": 1,
                "type": "string",
                "inclusive": True,
                "exact": False,
                "path": ["video_url"],
                "message": "String must contain at least 1 character(s)",
            }
        ),
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "expected"), [pytest.param(b, s, e, id=name) for name, b, s, e in CASES]
)
def test_queue_answers_like_venice(
    table_env: Env, table_key: str, body: dict[str, Any], status: int, expected: dict[str, Any]
) -> None:
    response = table_env.post("/video/queue", body, table_key)
    assert response.status_code == status, response.text
    if status != 200:
        assert response.json() == expected


def test_rejected_requests_charge_nothing(table_env: Env) -> None:
    account_id = table_env.make_account(balance_usd=5)
    key = table_env.make_key(account_id)
    for name, body, status, _ in CASES:
        if status == 400 and "model" in body and body["model"] != "sora-9":
            assert table_env.post("/video/queue", body, key).status_code == 400, name
    with table_env.db.transaction() as session:
        kinds = session.scalars(
            select(LedgerEntry.kind).where(LedgerEntry.account_id == account_id)
        ).all()
        balance = session.scalars(
            select(Account.balance_micros).where(Account.id == account_id)
        ).one()
    assert (list(kinds), balance) == ([LedgerKind.TOP_UP], 5_000_000)
