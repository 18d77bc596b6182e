"""The `venice` engine with `media=urls`, against a second videoqueue on 127.0.0.1: the job's
image goes upstream as a signed link to our server, which the upstream fetches (its media
intake allowed to reach 127.0.0.1), and the MP4 comes back."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import png_data_url
from tests.engines.videoqueue_servers import (
    Relay,
    assert_mp4_of_the_request,
    held_upstream,
    relay_through,
)
from videoqueue.engines.venice import load
from videoqueue.jobs.states import JobState
from videoqueue.storage.layout import input_key

MODEL = "relay-i2v"
INPUT_FETCHED = "videoqueue.api.requests GET /v1/share/input/{token} 200 "

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def catalog(engine: str) -> str:
    """A 1 s, 256p, 1:1 image-to-video model on `engine`."""
    return f"""
[models."{MODEL}"]
name = "Relay"
created = 1767225600
engine = "{engine}"
requires = ["image_url"]
price = {{ rule = "per_second", rates = {{ "256p" = 0.01 }} }}

[models."{MODEL}".constraints]
model_type = "image-to-video"
durations = ["1s"]
resolutions = ["256p"]
aspect_ratios = ["1:1"]
audio = false
audio_configurable = false
"""


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    """Ours forwarding with `media=urls` to an upstream that may fetch from 127.0.0.1 and
    renders each job as soon as it has it."""
    gate = tmp_path / "gate"
    gate.touch()
    upstream = held_upstream(
        tmp_path / "upstream",
        catalog("gated"),
        gate,
        {"VIDEOQUEUE_MEDIA_ALLOWED_NETWORKS": '["127.0.0.1/32"]'},
    )
    factory = (
        f"videoqueue.engines.venice:load?base_url={quote(upstream.base_url)}"
        "&api_key_env=UPSTREAM_VIDEOQUEUE_KEY&poll_seconds=0.2&max_poll_seconds=0.5"
        "&media=urls"
    )
    requests = ("POST /api/v1/video/queue", "POST /api/v1/video/complete")
    try:
        upstream.start()
        with relay_through(
            tmp_path / "ours", catalog("upstream"), factory, upstream, gate, requests
        ) as r:
            yield r
    finally:
        upstream.kill()


def test_an_image_goes_upstream_as_a_link_the_upstream_fetches_from_us(relay: Relay) -> None:
    image = png_data_url(256, 256, noise_seed=7)
    job_id = relay.queue("a lighthouse at dusk", MODEL, image_url=image)

    job = relay.finished(job_id)

    assert job.state == JobState.COMPLETED, job.failure
    response = relay.retrieve(job_id, MODEL)
    assert response.headers["content-type"] == "video/mp4"
    assert_mp4_of_the_request(response.content)
    # The upstream fetched the image from our link, and took the very bytes we were sent
    # (inputs are stored under their SHA-256 on both sides).
    assert relay.ours.log.read_text().count(INPUT_FETCHED) == 1
    (upstream_job,) = relay.upstream.jobs()
    sha256 = hashlib.sha256(base64.b64decode(image.split(",", 1)[1])).hexdigest()
    assert job.job_spec.media.image == input_key(job.id, sha256)
    assert upstream_job.job_spec.media.image == input_key(upstream_job.id, sha256)
    relay.assert_one_upstream_job_and_books_balanced(job)


def test_an_unknown_media_form_does_not_set_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THE_KEY", "k")
    with pytest.raises(ValueError, match="media must be one of data, urls"):
        load(base_url="http://127.0.0.1:9/api/v1", api_key_env="THE_KEY", media="links")
