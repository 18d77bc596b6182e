"""OpenAI's `/v1/videos` through the real app: the same jobs, keys, balances and catalogue as
Venice's routes, rendered in OpenAI's shapes."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from typing import Any

import av
import pytest
from fastapi import FastAPI
from PIL import Image

from tests.accounts import account_of, balance, price_micros
from tests.conftest import Env, build_env, load_job, png_data_url, wait_until
from videoqueue.auth.keys import create_key
from videoqueue.auth.models import KeyKind, ModelPrivacy
from videoqueue.clock import ManualClock, SystemClock
from videoqueue.jobs import store
from videoqueue.jobs.failure import Failure, FailureKind
from videoqueue.media.previews import SPRITE_COLUMNS, SPRITE_ROWS, SPRITE_TILE_WIDTH
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor

T2V = "wan-2.5-preview-text-to-video"
I2V = "wan-2.6-image-to-video"
ALIASES = '[aliases]\n"sora-2" = "wan-2.5-preview-text-to-video"\n'
CREATE = {"model": T2V, "prompt": "a kite over dunes", "seconds": "5", "size": "854x480"}
VENICE_BODY = {"model": T2V, "duration": "5s", "resolution": "480p", "aspect_ratio": "16:9"}


@pytest.fixture
def openai_env(settings: Settings) -> Iterator[Env]:
    """The app with an operator catalogue that makes `sora-2` an alias."""
    catalog = settings.data_dir.parent / "catalog.toml"
    catalog.write_text(ALIASES)
    yield from build_env(settings.model_copy(update={"catalog_path": catalog}))


def _auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def _create(env: Env, key: str, prefix: str = "/v1", **changes: Any) -> dict[str, Any]:
    body = {**CREATE, **changes}
    response = env.client.post(f"{prefix}/videos", json=body, headers=_auth(key))
    assert response.status_code == 200, response.text
    video: dict[str, Any] = response.json()
    return video


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize("prefix", ["/v1", "/api/v1"])
def test_create_answers_a_queued_video_and_charges_the_quote(openai_env: Env, prefix: str) -> None:
    key = openai_env.make_key(balance_usd=10)
    account = account_of(openai_env, key)
    before = balance(openai_env, account)
    video = _create(openai_env, key, prefix)
    assert video == {
        "id": video["id"],
        "object": "video",
        "model": T2V,
        "status": "queued",
        "progress": 0,
        "created_at": video["created_at"],
        "completed_at": None,
        "expires_at": None,
        "seconds": "5",
        "size": "854x480",
        "prompt": "a kite over dunes",
        "remixed_from_video_id": None,
        "error": None,
    }
    assert isinstance(video["created_at"], int)
    assert before - balance(openai_env, account) == price_micros(openai_env, VENICE_BODY) > 0
    spec = load_job(openai_env.db, video["id"]).job_spec
    assert (spec.width, spec.height, spec.duration_s) == (854, 480, 5.0)


def test_an_alias_from_the_catalogue_queues_its_model(openai_env: Env) -> None:
    key = openai_env.make_key()
    assert _create(openai_env, key, model="sora-2")["model"] == T2V
    body = {"prompt": "no model named", "seconds": "5"}
    response = openai_env.client.post("/v1/videos", json=body, headers=_auth(key))
    assert response.status_code == 200, response.text
    assert response.json()["model"] == T2V  # the SDK's default, `sora-2`


def test_without_size_or_seconds_the_models_defaults_apply(openai_env: Env) -> None:
    key = openai_env.make_key()
    video = _create(openai_env, key, model="veo3-fast-text-to-video", seconds=None, size=None)
    assert (video["seconds"], video["size"]) == ("4", "1280x720")


def test_multipart_create_takes_an_uploaded_first_frame(openai_env: Env) -> None:
    key = openai_env.make_key()
    png = base64.b64decode(png_data_url(640, 360).split(",", 1)[1])
    response = openai_env.client.post(
        "/v1/videos",
        data={"model": I2V, "prompt": "the sea", "seconds": "5", "size": "1280x720"},
        files={"input_reference": ("frame.png", png, "image/png")},
        headers=_auth(key),
    )
    assert response.status_code == 200, response.text
    spec = load_job(openai_env.db, response.json()["id"]).job_spec
    assert spec.media.image is not None and (spec.width, spec.height) == (1280, 720)


def test_json_create_takes_an_image_url_reference(openai_env: Env) -> None:
    key = openai_env.make_key()
    reference = {"image_url": png_data_url(480, 640)}
    video = _create(openai_env, key, model=I2V, size="1280x720", input_reference=reference)
    assert load_job(openai_env.db, video["id"]).job_spec.media.image is not None
    assert video["size"] == "540x720"  # a model without aspect ratios takes the image's shape


@pytest.mark.parametrize(
    ("changes", "param", "named"),
    [
        ({"size": "720x1280"}, "size", "'1280x720' | '404x720' | '720x720'"),
        ({"seconds": "4"}, "seconds", "'5' | '10'"),
        ({"seconds": True}, "seconds", "'5' | '10'"),
        ({"model": "sora-3"}, "model", "'sora-3' does not exist"),
        ({"prompt": 7}, "prompt", "prompt: Expected string, received number"),
        ({"prompt": None}, "prompt", "prompt: Required"),
        ({"input_reference": {"file_id": "f"}}, "input_reference", "file_id is not supported"),
        ({"input_reference": {"image_url": png_data_url()}}, "input_reference", "image_url"),
        ({"quality": "high"}, "quality", "Unrecognized request argument supplied: quality"),
        (
            {"model": I2V, "size": "1280x720", "input_reference": {"image_url": "data:,x"}},
            "input_reference",
            "input_reference: only base64 data URLs are supported",
        ),
    ],
)
def test_an_invalid_create_is_a_400_naming_the_parameter(
    openai_env: Env, changes: dict[str, Any], param: str, named: str
) -> None:
    key = openai_env.make_key(balance_usd=10)
    account = account_of(openai_env, key)
    body = {k: v for k, v in {**CREATE, **changes}.items() if v is not None}
    response = openai_env.client.post("/v1/videos", json=body, headers=_auth(key))
    error = _error(response, 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert named in error["message"]
    assert balance(openai_env, account) == 10_000_000


def test_a_body_that_is_neither_json_nor_a_form_is_a_400(openai_env: Env) -> None:
    key = openai_env.make_key()
    response = openai_env.client.post(
        "/v1/videos", content=b"hello", headers={**_auth(key), "Content-Type": "text/plain"}
    )
    assert _error(response, 400)["code"] == "invalid_content_type"
    response = openai_env.client.post(
        "/v1/videos", content=b"{", headers={**_auth(key), "Content-Type": "application/json"}
    )
    assert _error(response, 400)["message"] == "Invalid JSON request"


@pytest.mark.parametrize("route", ["POST /v1/videos", "GET /v1/videos", "GET /api/v1/videos/x"])
def test_a_missing_or_bad_key_is_a_401(openai_env: Env, route: str) -> None:
    method, path = route.split()
    for key in (None, "vq_not_a_key"):
        response = openai_env.client.request(method, path, json=CREATE, headers=_auth(key))
        error = _error(response, 401)
        assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")


def test_a_short_balance_is_a_402_and_queues_nothing(openai_env: Env) -> None:
    key = openai_env.make_key(balance_usd="0.01")
    response = openai_env.client.post("/v1/videos", json=CREATE, headers=_auth(key))
    error = _error(response, 402)
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_balance")
    listed = openai_env.client.get("/v1/videos", headers=_auth(key)).json()
    assert listed["data"] == []


def test_the_queue_rate_limit_is_a_429_with_retry_after(settings: Settings) -> None:
    for env in build_env(settings.model_copy(update={"queue_requests_per_minute": 1})):
        key = env.make_key()
        _create(env, key)
        response = env.client.post("/v1/videos", json=CREATE, headers=_auth(key))
        error = _error(response, 429)
        assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
        assert int(response.headers["retry-after"]) > 0
        assert response.headers["x-ratelimit-limit-requests"] == "1"


def test_an_idempotency_key_answers_the_same_video_and_charges_once(openai_env: Env) -> None:
    key = openai_env.make_key(balance_usd=10)
    account = account_of(openai_env, key)
    headers = {**_auth(key), "Idempotency-Key": "k-1"}
    first = openai_env.client.post("/v1/videos", json=CREATE, headers=headers).json()
    again = openai_env.client.post("/v1/videos", json=CREATE, headers=headers).json()
    assert again["id"] == first["id"]
    assert 10_000_000 - balance(openai_env, account) == price_micros(openai_env, VENICE_BODY)
    other = openai_env.client.post("/v1/videos", json={**CREATE, "seconds": "10"}, headers=headers)
    assert other.status_code == 409
    assert set(other.json()["error"]) == {"message", "type", "param", "code"}


def test_a_venice_job_reads_through_openai_and_an_openai_job_through_venice(
    openai_env: Env,
) -> None:
    key = openai_env.make_key()
    queued = openai_env.post("/video/queue", {**VENICE_BODY, "prompt": "from venice"}, key).json()
    video = openai_env.client.get(f"/v1/videos/{queued['queue_id']}", headers=_auth(key)).json()
    assert (video["id"], video["model"], video["status"]) == (queued["queue_id"], T2V, "queued")
    assert (video["prompt"], video["size"], video["seconds"]) == ("from venice", "854x480", "5")

    created = _create(openai_env, key)
    polled = openai_env.post("/video/retrieve", {"model": T2V, "queue_id": created["id"]}, key)
    assert polled.status_code == 200 and polled.json()["status"] == "PROCESSING"


def test_another_accounts_video_is_not_found(openai_env: Env) -> None:
    video = _create(openai_env, openai_env.make_key())
    other = openai_env.make_key()
    for method, path in (
        ("GET", f"/v1/videos/{video['id']}"),
        ("GET", f"/v1/videos/{video['id']}/content"),
        ("DELETE", f"/v1/videos/{video['id']}"),
    ):
        error = _error(openai_env.client.request(method, path, headers=_auth(other)), 404)
        assert error["code"] == "video_not_found" and video["id"] in error["message"]


def test_the_list_pages_with_after_limit_and_order(openai_env: Env) -> None:
    key = openai_env.make_key()
    ids = [_create(openai_env, key, prompt=f"clip {i}")["id"] for i in range(5)]
    client, headers = openai_env.client, _auth(key)

    newest = client.get("/v1/videos?limit=2", headers=headers).json()
    assert newest["object"] == "list"
    assert [v["id"] for v in newest["data"]] == ids[:-3:-1]
    assert (newest["first_id"], newest["last_id"], newest["has_more"]) == (ids[4], ids[3], True)

    seen: list[str] = []
    after = None
    while True:
        query = "?order=asc&limit=2" + (f"&after={after}" if after else "")
        page = client.get(f"/v1/videos{query}", headers=headers).json()
        seen += [v["id"] for v in page["data"]]
        after = page["last_id"]
        if not page["has_more"]:
            break
    assert seen == ids

    client.delete(f"/v1/videos/{ids[0]}", headers=headers)
    listed = client.get("/v1/videos?limit=100", headers=headers).json()
    assert [v["id"] for v in listed["data"]] == ids[:0:-1] and listed["has_more"] is False
    empty = client.get("/v1/videos", headers=_auth(openai_env.make_key())).json()
    assert empty == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


@pytest.mark.parametrize(
    ("query", "param"),
    [("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"), ("order=up", "order")],
)
def test_a_bad_list_query_is_a_400(openai_env: Env, query: str, param: str) -> None:
    response = openai_env.client.get(f"/v1/videos?{query}", headers=_auth(openai_env.make_key()))
    assert _error(response, 400)["param"] == param


def test_an_unknown_after_cursor_is_a_400(openai_env: Env) -> None:
    response = openai_env.client.get("/v1/videos?after=nope", headers=_auth(openai_env.make_key()))
    assert "after" in _error(response, 400)["message"]


def test_delete_cancels_and_refunds_a_queued_video_then_it_is_gone(openai_env: Env) -> None:
    key = openai_env.make_key(balance_usd=10)
    account = account_of(openai_env, key)
    video = _create(openai_env, key)
    response = openai_env.client.delete(f"/v1/videos/{video['id']}", headers=_auth(key))
    assert response.status_code == 200
    assert response.json() == {"id": video["id"], "object": "video.deleted", "deleted": True}
    assert balance(openai_env, account) == 10_000_000
    gone = openai_env.client.get(f"/v1/videos/{video['id']}", headers=_auth(key))
    assert _error(gone, 404)["code"] == "video_not_found"
    venice = openai_env.post("/video/retrieve", {"model": T2V, "queue_id": video["id"]}, key)
    assert venice.status_code == 404 and venice.json()["code"] == "MEDIA_NOT_FOUND"


def test_a_failed_video_carries_its_stored_failure(openai_env: Env) -> None:
    key = openai_env.make_key()
    video = _create(openai_env, key)
    failure = Failure(FailureKind.CONTENT_POLICY, "The prompt was refused.", True, "wan-2.6")
    with openai_env.db.transaction() as session:
        job = store.get_job_for_update(session, video["id"])
        assert job is not None
        store.fail_job(session, job, failure=failure, clock=SystemClock())
    failed = openai_env.client.get(f"/v1/videos/{video['id']}", headers=_auth(key)).json()
    assert failed["status"] == "failed" and isinstance(failed["completed_at"], int)
    assert failed["error"] == {
        "code": "provider_content_policy",
        "message": "The prompt was refused. Credits have been refunded. Try using wan-2.6 instead.",
    }
    content = openai_env.client.get(f"/v1/videos/{video['id']}/content", headers=_auth(key))
    assert _error(content, 400)["code"] == "video_not_ready"


def test_content_before_it_is_finished_or_of_an_unknown_variant_is_a_400(
    openai_env: Env,
) -> None:
    key = openai_env.make_key()
    video = _create(openai_env, key)
    pending = openai_env.client.get(f"/v1/videos/{video['id']}/content", headers=_auth(key))
    assert _error(pending, 400)["code"] == "video_not_ready"
    odd = openai_env.client.get(f"/v1/videos/{video['id']}/content?variant=gif", headers=_auth(key))
    assert _error(odd, 400)["param"] == "variant"


def test_an_unknown_route_under_v1_videos_answers_in_openai_shape(openai_env: Env) -> None:
    response = openai_env.client.get("/v1/videos/a/b/c", headers=_auth(openai_env.make_key()))
    assert _error(response, 404)["message"] == "Not found"


def test_a_finished_video_serves_its_mp4_thumbnail_and_spritesheet(
    env: Env, workers: Supervisor
) -> None:
    key = env.make_key()
    video = _create(env, key, seconds="5", size="854x480")
    url = f"/v1/videos/{video['id']}"

    def done() -> dict[str, Any] | None:
        polled: dict[str, Any] = env.client.get(url, headers=_auth(key)).json()
        return polled if polled["status"] == "completed" else None

    finished = wait_until(done, timeout=120)
    assert finished["progress"] == 100 and isinstance(finished["completed_at"], int)

    mp4 = env.client.get(f"{url}/content", headers=_auth(key))
    assert mp4.status_code == 200 and mp4.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(mp4.content), "r") as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (854, 480)
    part = env.client.get(f"{url}/content", headers={**_auth(key), "Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == mp4.content[:100]
    past = f"bytes={len(mp4.content)}-"
    beyond = env.client.get(f"{url}/content", headers={**_auth(key), "Range": past})
    assert _error(beyond, 416)["message"] == "Requested range not satisfiable"
    assert beyond.headers["content-range"] == f"bytes */{len(mp4.content)}"

    thumb = env.client.get(f"{url}/content?variant=thumbnail", headers=_auth(key))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert (image.format, image.size) == ("WEBP", (854, 480))

    sheet = env.client.get(f"{url}/content?variant=spritesheet", headers=_auth(key))
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(sheet.content)) as image:
        tile_height = 90  # 160 wide at 854:480, even
        assert image.format == "JPEG"
        assert image.size == (SPRITE_COLUMNS * SPRITE_TILE_WIDTH, SPRITE_ROWS * tile_height)
        first, last = image.crop((0, 0, 160, 90)), image.crop((640, 360, 800, 450))
        assert first.tobytes() != last.tobytes()  # tiles are different frames


def test_a_private_model_answers_its_download_url(env: Env) -> None:
    key = env.make_key()
    model = "grok-imagine-text-to-video-private"
    created = env.client.post(
        "/v1/videos",
        json={"model": model, "prompt": "a lantern", "seconds": "4", "size": "854x480"},
        headers=_auth(key),
    )
    assert created.status_code == 200, created.text
    assert created.json()["download_url"].startswith("http")


def test_videos_made_in_one_instant_page_by_id_on_each_database(
    settings: Settings, database_url: str, clock: ManualClock
) -> None:
    for env in build_env(settings.model_copy(update={"database_url": database_url}), clock):
        key = env.make_key()
        ids = sorted(_create(env, key, prompt=f"clip {i}")["id"] for i in range(4))
        for order, expected in (("asc", ids), ("desc", ids[::-1])):
            seen: list[str] = []
            query = f"/v1/videos?order={order}&limit=3"
            while True:
                page = env.client.get(query, headers=_auth(key)).json()
                seen += [v["id"] for v in page["data"]]
                if not page["has_more"]:
                    break
                query = f"/v1/videos?order={order}&limit=3&after={page['last_id']}"
            assert seen == expected


def test_a_body_over_the_limit_is_a_413_in_openai_shape(settings: Settings) -> None:
    for env in build_env(settings.model_copy(update={"max_body_bytes": 1000})):
        headers = _auth(env.make_key())
        declared = env.client.post("/v1/videos", data={"prompt": "x" * 2000}, headers=headers)
        assert _error(declared, 413)["code"] == "payload_too_large"
        streamed = env.client.post(
            "/v1/videos",
            content=iter([b"--b\r\n", b"x" * 2000]),
            headers={**headers, "Content-Type": "multipart/form-data; boundary=b"},
        )
        assert _error(streamed, 413)["code"] == "payload_too_large"


def test_an_unexpected_error_is_a_500_in_openai_shape(openai_env: Env) -> None:
    def boom() -> None:
        raise RuntimeError("the route broke")

    app = openai_env.client.app
    assert isinstance(app, FastAPI)
    app.add_api_route("/v1/videos/test-only/boom", boom, methods=["GET"])
    error = _error(openai_env.client.get("/v1/videos/test-only/boom"), 500)
    assert (error["type"], error["code"]) == ("server_error", "unknown_error")
    assert error["message"].startswith("An unknown error occurred (request id ")


def test_a_key_for_private_models_only_is_refused_an_aliased_public_model(
    openai_env: Env,
) -> None:
    account = openai_env.make_account(10)
    with openai_env.db.transaction() as session:
        _, secret = create_key(
            session,
            account_id=account,
            kind=KeyKind.INFERENCE,
            clock=SystemClock(),
            model_privacy=ModelPrivacy.PRIVATE_ONLY,
        )
    response = openai_env.client.post(
        "/v1/videos", json={**CREATE, "model": "sora-2"}, headers=_auth(secret)
    )
    assert _error(response, 403)["code"] == "unauthorized"
    assert balance(openai_env, account) == 10_000_000


def test_a_running_video_is_in_progress_with_the_engines_progress(openai_env: Env) -> None:
    key = openai_env.make_key()
    video = _create(openai_env, key)
    clock = SystemClock()
    with openai_env.db.transaction() as session:
        job = store.claim_next_job(
            session, worker_id="w", engines=["preview"], clock=clock, lease_seconds=60
        )
        assert job is not None and job.id == video["id"]
    with openai_env.db.transaction() as session:
        store.renew_lease(
            session, job_id=video["id"], worker_id="w", clock=clock, lease_seconds=60, progress=0.42
        )
    running = openai_env.client.get(f"/v1/videos/{video['id']}", headers=_auth(key)).json()
    assert (running["status"], running["progress"], running["completed_at"]) == (
        "in_progress",
        42,
        None,
    )
