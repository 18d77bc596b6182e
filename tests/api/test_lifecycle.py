"""Retrieve, Range, complete, deletion, ownership and the error bodies of the job routes."""

from __future__ import annotations

import pytest

from tests.conftest import RETRIEVE_POLL_S, Env, wait_until
from videoqueue.workers import Supervisor

MODEL = "wan-2.5-preview-text-to-video"
BODY = {"model": MODEL, "prompt": "lifecycle", "duration": "5s", "resolution": "480p"}
NOT_FOUND = {
    "error": "Media could not be found. Request may be invalid, expired, or deleted.",
    "code": "MEDIA_NOT_FOUND",
}


def _finished_job(env: Env, key: str) -> str:
    queue_id = str(env.post("/video/queue", BODY, key).json()["queue_id"])
    wait_until(
        lambda: (
            env.post("/video/retrieve", {"model": MODEL, "queue_id": queue_id}, key).headers[
                "content-type"
            ]
            == "video/mp4"
        ),
        timeout=90,
        interval=RETRIEVE_POLL_S,
    )
    return queue_id


@pytest.fixture
def done(env: Env, workers: Supervisor) -> tuple[str, str]:
    key = env.make_key()
    return key, _finished_job(env, key)


def test_retrieve_honours_range_requests(env: Env, done: tuple[str, str]) -> None:
    key, queue_id = done
    ref = {"model": MODEL, "queue_id": queue_id}
    whole = env.post("/video/retrieve", ref, key).content
    part = env.post("/video/retrieve", ref, key, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole)}"
    assert part.content == whole[100:200]
    tail = env.post("/video/retrieve", ref, key, headers={"Range": "bytes=-50"})
    assert tail.content == whole[-50:]
    beyond = env.post("/video/retrieve", ref, key, headers={"Range": f"bytes={len(whole)}-"})
    assert beyond.status_code == 416


def test_retrieve_returns_404_after_complete(env: Env, done: tuple[str, str]) -> None:
    key, queue_id = done
    ref = {"model": MODEL, "queue_id": queue_id}
    completed = env.post("/video/complete", ref, key)
    assert completed.status_code == 200 and completed.json() == {"success": True}
    gone = env.post("/video/retrieve", ref, key)
    assert gone.status_code == 404 and gone.json() == NOT_FOUND
    assert not (env.settings.data_dir / "media" / "jobs" / queue_id).exists()
    assert env.post("/video/complete", ref, key).json() == {"success": True}


def test_delete_media_on_completion_serves_once_then_404(env: Env, done: tuple[str, str]) -> None:
    key, queue_id = done
    ref = {"model": MODEL, "queue_id": queue_id}
    served = env.post("/video/retrieve", {**ref, "delete_media_on_completion": True}, key)
    assert served.headers["content-type"] == "video/mp4" and len(served.content) > 1000
    assert env.post("/video/retrieve", ref, key).status_code == 404


def test_another_accounts_job_is_not_found(env: Env, done: tuple[str, str]) -> None:
    _, queue_id = done
    stranger = env.make_key()
    ref = {"model": MODEL, "queue_id": queue_id}
    for path in ("/video/retrieve", "/video/complete"):
        response = env.post(path, ref, stranger)
        assert response.status_code == 404 and response.json() == NOT_FOUND


def test_wrong_model_for_a_queue_id_is_not_found(env: Env, done: tuple[str, str]) -> None:
    key, queue_id = done
    response = env.post(
        "/video/retrieve", {"model": "wan-2.6-text-to-video", "queue_id": queue_id}, key
    )
    assert response.status_code == 404


@pytest.mark.parametrize("header", ["Bearer nope", "Basic abc", "Bearer "])
def test_a_bad_key_is_401(env: Env, header: str) -> None:
    response = env.client.post(
        "/api/v1/video/retrieve",
        json={"model": MODEL, "queue_id": "x"},
        headers={"Authorization": header},
    )
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication failed"}


def test_no_credentials_is_the_402_discovery_body(env: Env) -> None:
    response = env.client.post("/api/v1/video/retrieve", json={"model": MODEL, "queue_id": "x"})
    assert response.status_code == 402
    assert response.json()["x402Version"] == 2
    assert "PAYMENT-REQUIRED" in response.headers


def test_malformed_json_is_400(env: Env) -> None:
    key = env.make_key()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for raw in (b"{not json", b"[1, 2]", b"\xff\xfe", b""):
        response = env.client.post("/api/v1/video/queue", content=raw, headers=headers)
        assert response.status_code == 400
        assert response.json() == {"error": "Invalid JSON request"}


@pytest.mark.parametrize("route", ["queue", "quote", "retrieve", "complete"])
@pytest.mark.parametrize("nesting", [b"[" * 100_000, b'{"a":' * 100_000])
def test_json_nested_past_the_recursion_limit_is_400(env: Env, route: str, nesting: bytes) -> None:
    key = env.make_key()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    response = env.client.post(f"/api/v1/video/{route}", content=nesting, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid JSON request"}


def test_wrong_content_type_is_400(env: Env) -> None:
    key = env.make_key()
    response = env.client.post(
        "/api/v1/video/queue",
        content=b"model=x",
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 400
    assert response.json() == {"error": "'Content-Type' must be 'application/json'"}


def test_retrieve_rejects_unknown_keys_with_a_detailed_error(env: Env) -> None:
    key = env.make_key()
    response = env.post("/video/retrieve", {"model": MODEL, "queue_id": "q", "extra": 1}, key)
    assert response.status_code == 400
    assert response.json() == {
        "error": "Invalid request parameters",
        "details": {"_errors": ["Unrecognized key(s) in object: 'extra'"]},
        "issues": [
            {
                "code": "unrecognized_keys",
                "keys": ["extra"],
                "path": [],
                "message": "Unrecognized key(s) in object: 'extra'",
            }
        ],
    }


def test_queue_constraint_violations_use_venice_bodies(env: Env) -> None:
    key = env.make_key()
    bad_duration = env.post("/video/queue", {**BODY, "duration": "7s"}, key)
    assert bad_duration.status_code == 400
    assert bad_duration.json()["issues"] == [
        {
            "code": "invalid_enum_value",
            "expected": "'5s' | '10s'",
            "received": "7s",
            "options": ["5s", "10s"],
            "path": ["duration"],
            "message": "Invalid enum value. Expected '5s' | '10s', received '7s'",
        }
    ]
    assert bad_duration.json()["details"] == {
        "_errors": [],
        "duration": {"_errors": ["Invalid enum value. Expected '5s' | '10s', received '7s'"]},
    }
    no_prompt = env.post("/video/queue", {k: v for k, v in BODY.items() if k != "prompt"}, key)
    assert no_prompt.json()["issues"][0]["message"] == "Required"
    long_prompt = env.post("/video/queue", {**BODY, "prompt": "x" * 2501}, key)
    assert long_prompt.json()["issues"][0]["message"] == (
        "String must contain at most 2500 character(s)"
    )
    i2v_aspect = env.post(
        "/video/queue",
        {**BODY, "model": "wan-2.5-preview-image-to-video", "aspect_ratio": "16:9"},
        key,
    )
    assert i2v_aspect.status_code == 400
    assert i2v_aspect.json() == {"error": "This model does not support aspect_ratio"}
    unknown = env.post("/video/queue", {**BODY, "model": "no-such-model"}, key)
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "Invalid model specified", "code": "INVALID_MODEL"}
