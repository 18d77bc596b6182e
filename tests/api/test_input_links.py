"""Input links (`/v1/share/input/<token>`), which a worker signs for an engine that forwards
its job upstream: through the real HTTP app, on local storage and on a real S3 (SeaweedFS),
each serves its job's stored input only while the job is pending, and refuses any token
altered, of another kind, expired, or of a job that has ended."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Env, build_env, load_job, png_data_url
from tests.s3_server import S3Server
from videoqueue.api.app import create_app
from videoqueue.clock import ManualClock
from videoqueue.delivery.inputs import INPUT_READ_PATH
from videoqueue.delivery.tokens import DOWNLOAD_LINK, LinkSigner
from videoqueue.settings import Settings
from videoqueue.storage.factory import storage_from_url
from videoqueue.storage.layout import input_key
from videoqueue.workers import input_link_terms

I2V = "wan-2.5-preview-image-to-video"
HOUR = 3600


@pytest.fixture(params=["local", "s3"])
def settings(settings: Settings, request: pytest.FixtureRequest) -> Iterator[Settings]:
    """The shared test settings, on local storage or under a fresh prefix of an S3 bucket."""
    if request.param == "local":
        yield settings
        return
    s3_server: S3Server = request.getfixturevalue("s3_server")
    yield settings.model_copy(update=s3_server.settings())


@pytest.fixture
def env(settings: Settings, clock: ManualClock) -> Iterator[Env]:
    """The app on a clock the test moves; no worker runs, so a queued job stays pending."""
    yield from build_env(settings, clock)


def _queued_input(env: Env) -> tuple[str, str, str]:
    """(API key, job id, the job's image key) of a new image-to-video job left queued."""
    key = env.make_key()
    body: dict[str, Any] = {
        "model": I2V,
        "prompt": "the sky",
        "duration": "5s",
        "resolution": "480p",
        "image_url": png_data_url(64, 48, noise_seed=3),
    }
    response = env.post("/video/queue", body, key)
    assert response.status_code == 200, response.text
    job_id = str(response.json()["queue_id"])
    image = load_job(env.db, job_id).job_spec.media.image
    assert image is not None
    return key, job_id, image


def _link(env: Env, clock: ManualClock, job_id: str, key: str, seconds: float = HOUR) -> str:
    """The path of the link a worker would sign for the input, valid `seconds` from now."""
    url = input_link_terms(env.settings).url(
        job_id, key, expires_at=clock.now() + timedelta(seconds=seconds)
    )
    assert url.startswith(f"{env.settings.resolved_public_base_url}{INPUT_READ_PATH}/")
    return urlparse(url).path


def _stored(env: Env, key: str) -> bytes:
    storage = storage_from_url(env.settings.resolved_storage_url, env.settings.s3_config())
    return b"".join(storage.read_range(key, 0, storage.size(key) - 1))


def _refusal(response: Any, status: int, code: str) -> None:  # TestClient's Response
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.headers["cache-control"] == "private, no-store"


def test_an_input_link_serves_its_pending_job_s_input_with_ranges(
    env: Env, clock: ManualClock
) -> None:
    _, job_id, image = _queued_input(env)
    path = _link(env, clock, job_id, image)
    stored = _stored(env, image)

    whole = env.client.get(path)
    part = env.client.get(path, headers={"Range": "bytes=1-3"})

    assert whole.status_code == 200, whole.text
    assert whole.content == stored and stored.startswith(b"\x89PNG")
    assert whole.headers["content-type"] == "image/png"
    assert whole.headers["cache-control"] == "private, no-store"
    assert part.status_code == 206
    assert part.content == b"PNG"
    assert part.headers["content-range"] == f"bytes 1-3/{len(stored)}"


def test_an_altered_or_foreign_input_link_is_refused(env: Env, clock: ManualClock) -> None:
    _, job_id, image = _queued_input(env)
    path = _link(env, clock, job_id, image)
    token = path.rsplit("/", 1)[1]
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[20] ^= 1  # a bit of the job id
    altered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    # The same claims signed as a download link, with the same secret: another kind of link.
    claims = input_link_terms(env.settings).signer.verify(token)
    secret = (env.settings.data_dir / "link_secret").read_text().strip().encode()
    download = LinkSigner(secret, DOWNLOAD_LINK).sign(claims)
    # A link the server signed to a key that is not one of the job's inputs.
    stranger = _link(env, clock, job_id, input_key(job_id, "0" * 64))

    assert env.client.get(path).status_code == 200
    _refusal(env.client.get(f"{INPUT_READ_PATH}/{altered}"), 404, "LINK_NOT_FOUND")
    _refusal(env.client.get(f"{INPUT_READ_PATH}/{download}"), 404, "LINK_NOT_FOUND")
    _refusal(env.client.get(f"{INPUT_READ_PATH}/not-a-token"), 404, "LINK_NOT_FOUND")
    _refusal(env.client.get(stranger), 404, "LINK_NOT_FOUND")


def test_an_input_link_is_refused_once_its_job_has_ended(env: Env, clock: ManualClock) -> None:
    key, job_id, image = _queued_input(env)
    path = _link(env, clock, job_id, image)
    assert env.client.get(path).status_code == 200

    ended = env.post("/video/complete", {"model": I2V, "queue_id": job_id}, key)
    assert ended.status_code == 200, ended.text

    _refusal(env.client.get(path), 404, "MEDIA_NOT_FOUND")


def test_an_input_link_is_refused_past_its_expiry(env: Env, clock: ManualClock) -> None:
    _, job_id, image = _queued_input(env)
    path = _link(env, clock, job_id, image, seconds=60)
    assert env.client.get(path).status_code == 200

    clock.advance(61)

    _refusal(env.client.get(path), 410, "LINK_EXPIRED")


@pytest.mark.parametrize("settings", ["s3"], indirect=True)
def test_an_input_link_on_s3_redirects_to_the_bucket_when_set_to(
    env: Env, clock: ManualClock
) -> None:
    _, job_id, image = _queued_input(env)
    path = _link(env, clock, job_id, image)
    redirecting = env.settings.model_copy(update={"storage_redirect": True})

    with TestClient(create_app(redirecting, clock=clock), follow_redirects=False) as client:
        moved = client.get(path)

    assert moved.status_code == 307, moved.text
    assert moved.headers["cache-control"] == "private, no-store"
    fetched = httpx.get(moved.headers["location"])
    assert fetched.status_code == 200
    assert fetched.content == _stored(env, image)
