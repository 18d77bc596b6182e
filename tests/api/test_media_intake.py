"""Every media field through the real app: decoded, checked against its limits, stored with the
job, and refused with the spec's status, a `code` and a message naming the field and the limit.

Remote media comes from a real HTTP server on 127.0.0.1 (private ranges allowed for the tests
that fetch; refused, before any connection, for the tests of the SSRF guard).
"""

from __future__ import annotations

import hashlib
import io
import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from sqlalchemy import select

from tests.conftest import RETRIEVE_POLL_S, Env, build_env, load_job, wait_until
from tests.media_files import (
    clip,
    coffee_png,
    data_url,
    encode_image,
    face_png,
    mp3,
    solid_png,
    wav,
)
from tests.media_server import MediaServer, running
from videoqueue.billing.models import Account
from videoqueue.engines.base import Media
from videoqueue.jobs.models import Job
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor

I2V = "wan-2.6-image-to-video"
T2V = "wan-2.6-text-to-video"
SEEDANCE_I2V = "seedance-2-0-image-to-video-basic"
SEEDANCE_R2V = "seedance-2-0-reference-to-video-basic"
V2V = "wan-2-7-video-to-video"
BALANCE_USD = 100


@pytest.fixture
def local_workers(local_env: Env) -> Iterator[Supervisor]:
    """One real worker process beside `local_env`."""
    supervisor = Supervisor(local_env.settings, 1)
    supervisor.start()
    yield supervisor
    supervisor.stop()


class Client:
    """One account with a key, and what the tests ask of it."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.account_id = env.make_account(BALANCE_USD)
        self.key = env.make_key(self.account_id)

    def queue(self, **body: Any) -> Any:
        return self.env.post("/video/queue", body, self.key)

    def balance_micros(self) -> int:
        with self.env.db.transaction() as session:
            account = session.get(Account, self.account_id)
            assert account is not None
            return account.balance_micros

    def stored_inputs(self) -> list[Path]:
        jobs = self.env.settings.data_dir / "media" / "jobs"
        return sorted(p for p in jobs.rglob("*") if p.is_file()) if jobs.exists() else []

    def refused(self, status: int, code: str, message: str, **body: Any) -> dict[str, Any]:
        """Queue `body`; assert the refusal, and that nothing was charged or kept."""
        response = self.queue(**body)
        assert response.status_code == status, response.text
        answer = response.json()
        assert answer["code"] == code
        assert message in answer["error"]
        assert self.balance_micros() == BALANCE_USD * 1_000_000
        assert self.stored_inputs() == []
        with self.env.db.transaction() as session:
            assert session.scalars(select(Job).where(Job.account_id == self.account_id)).all() == []
        return dict(answer)


@pytest.fixture
def client(env: Env) -> Client:
    return Client(env)


# -- images -----------------------------------------------------------------------------------


def i2v(image: str, **extra: Any) -> dict[str, Any]:
    return {"model": I2V, "prompt": "a slow pan", "duration": "5s", "image_url": image, **extra}


def test_truncated_image_is_a_corrupted_image(client: Client) -> None:
    png = coffee_png()
    client.refused(
        400,
        "CORRUPTED_IMAGE",
        "image_url: the file could not be decoded as an image",
        **i2v(data_url(png[: len(png) // 2], "image/png")),
    )


def test_declared_mime_type_is_not_trusted(client: Client) -> None:
    client.refused(400, "CORRUPTED_IMAGE", "image_url:", **i2v(data_url(wav(1.0), "image/png")))
    response = client.queue(
        **i2v(data_url(encode_image(np.full((64, 96, 3), 90, np.uint8), "JPEG"), "image/png"))
    )
    assert response.status_code == 200, "a JPEG declared as PNG is still a JPEG"


def test_image_under_the_models_short_side_is_too_small(client: Client) -> None:
    client.refused(
        400,
        "IMAGE_TOO_SMALL",
        "image_url: the image is 400x200 px; its shorter side must be at least 300 px",
        model=SEEDANCE_I2V,
        prompt="x",
        duration="5s",
        image_url=data_url(solid_png(400, 200)),
    )


def test_image_outside_the_models_aspect_ratios_is_out_of_bounds(client: Client) -> None:
    answer = client.refused(
        422,
        "IMAGE_ASPECT_RATIO_OUT_OF_BOUNDS",
        "image_url: the image's width/height ratio is 3.00",
        model=SEEDANCE_I2V,
        prompt="x",
        duration="5s",
        image_url=data_url(solid_png(1200, 400)),
    )
    assert "strictly between 0.4 and 2.5" in answer["error"]


def test_image_over_the_pixel_limit_is_too_large(client: Client) -> None:
    client.refused(
        422,
        "IMAGE_TOO_LARGE",
        "image_url: the image is 8000x6000 px; at most 40",
        **i2v(data_url(solid_png(8000, 6000))),
    )


def test_each_reference_image_is_named_by_its_index(client: Client) -> None:
    client.refused(
        400,
        "IMAGE_TOO_SMALL",
        "reference_image_urls[1]: the image is 100x100 px",
        model=SEEDANCE_R2V,
        prompt="x",
        duration="5s",
        reference_image_urls=[data_url(coffee_png()), data_url(solid_png(100, 100))],
    )


# -- audio ------------------------------------------------------------------------------------


def t2v(**media: Any) -> dict[str, Any]:
    return {"model": T2V, "prompt": "rain on a tin roof", "duration": "5s", **media}


def test_wav_and_mp3_audio_are_accepted(client: Client) -> None:
    assert client.queue(**t2v(audio_url=data_url(wav(3.0), "audio/wav"))).status_code == 200
    assert client.queue(**t2v(audio_url=data_url(mp3(3.0), "audio/mpeg"))).status_code == 200


def test_audio_that_is_not_wav_or_mp3_is_an_invalid_audio_format(client: Client) -> None:
    client.refused(
        400,
        "INVALID_AUDIO_FORMAT",
        "audio_url: the file is not WAV or MP3 audio",
        **t2v(audio_url=data_url(clip(3.0), "audio/wav")),
    )


def test_truncated_audio_is_an_invalid_audio_format(client: Client) -> None:
    client.refused(
        400,
        "INVALID_AUDIO_FORMAT",
        "audio_url:",
        **t2v(audio_url=data_url(wav(3.0)[:40], "audio/wav")),
    )


def test_audio_longer_than_30_s_is_too_long(client: Client) -> None:
    client.refused(
        422,
        "AUDIO_DURATION_TOO_LONG",
        "audio_url: the audio lasts 31.0 s; at most 30 s is allowed",
        **t2v(audio_url=data_url(wav(31.0))),
    )


def test_audio_over_15_mb_is_too_large(client: Client) -> None:
    big = wav(15 * 1024 * 1024 / 16_000 + 1)  # 16-bit mono at 8 kHz: 16 kB a second
    client.refused(
        422,
        "AUDIO_TOO_LARGE",
        "audio_url: the audio file is larger than 15 MB",
        **t2v(audio_url=data_url(big)),
    )


# -- video ------------------------------------------------------------------------------------


def r2v(**media: Any) -> dict[str, Any]:
    return {"model": SEEDANCE_R2V, "prompt": "Refer to <Video 1>", "duration": "5s", **media}


def test_reference_clips_within_limits_are_accepted(client: Client) -> None:
    response = client.queue(
        **r2v(
            reference_video_urls=[data_url(clip(3.0)), data_url(clip(4.0))],
            reference_audio_urls=[data_url(wav(2.5))],
        )
    )
    assert response.status_code == 200, response.text


def test_reference_video_over_15_s_is_too_long(client: Client) -> None:
    client.refused(
        422,
        "VIDEO_DURATION_TOO_LONG",
        "reference_video_urls[0]: the video lasts 16.0 s; at most 15 s is allowed",
        **r2v(reference_video_urls=[data_url(clip(16.0))]),
    )


def test_reference_video_under_2_s_is_too_short(client: Client) -> None:
    client.refused(
        422,
        "VIDEO_DURATION_TOO_SHORT",
        "reference_video_urls[1]: the video lasts 1.0 s; at least 2 s is required",
        **r2v(reference_video_urls=[data_url(clip(3.0)), data_url(clip(1.0))]),
    )


def test_reference_videos_over_15_s_together_are_too_long(client: Client) -> None:
    client.refused(
        422,
        "VIDEO_DURATION_TOO_LONG",
        "reference_video_urls: the reference video clips last 16.0 s together; "
        "at most 15 s in all is allowed",
        **r2v(reference_video_urls=[data_url(clip(8.0)), data_url(clip(8.0))]),
    )


def test_reference_audio_under_2_s_is_too_short(client: Client) -> None:
    client.refused(
        422,
        "AUDIO_DURATION_TOO_SHORT",
        "reference_audio_urls[0]: the audio lasts 1.0 s; at least 2 s is required",
        **r2v(
            reference_video_urls=[data_url(clip(3.0))], reference_audio_urls=[data_url(wav(1.0))]
        ),
    )


def test_reference_video_must_be_mp4_or_mov(client: Client) -> None:
    client.refused(
        400,
        "INVALID_VIDEO_FORMAT",
        "reference_video_urls[0]: the file is not MP4/MOV video",
        **r2v(reference_video_urls=[data_url(clip(3.0, fmt="webm"))]),
    )


def test_truncated_video_is_an_invalid_video_format(client: Client) -> None:
    whole = clip(3.0)
    client.refused(
        400,
        "INVALID_VIDEO_FORMAT",
        "reference_video_urls[0]: the MP4/MOV file could not be decoded",
        **r2v(reference_video_urls=[data_url(whole[: len(whole) // 2])]),
    )


def test_an_image_sent_as_video_is_an_invalid_video_format(client: Client) -> None:
    client.refused(
        400,
        "INVALID_VIDEO_FORMAT",
        "video_url: the file is not MP4/MOV or WebM video",
        model=V2V,
        prompt="x",
        duration="Auto",
        video_url=data_url(coffee_png(), "video/mp4"),
    )


@pytest.mark.parametrize("fmt", ["mp4", "mov", "webm"])
def test_video_url_takes_mp4_mov_and_webm(client: Client, fmt: str) -> None:
    response = client.queue(
        model=V2V, prompt="x", duration="Auto", video_url=data_url(clip(2.0, fmt=fmt))
    )
    assert response.status_code == 200, response.text


def test_invalid_base64_is_refused(client: Client) -> None:
    client.refused(
        400,
        "INVALID_REQUEST",
        "image_url: the data URL is not valid base64",
        **i2v("data:image/png;base64,***"),
    )


# -- remote media -----------------------------------------------------------------------------


def test_remote_media_is_fetched_and_stored_with_the_job(
    local_env: Env, server: MediaServer, local_workers: Supervisor
) -> None:
    client = Client(local_env)
    image = solid_png(640, 480, (30, 140, 220))
    response = client.queue(**i2v(server.serve("/still.png", image), resolution="720p"))
    assert response.status_code == 200, response.text
    queue_id = response.json()["queue_id"]
    digest = hashlib.sha256(image).hexdigest()
    assert load_job(local_env.db, queue_id).job_spec.media == Media(
        image=f"jobs/{queue_id}/inputs/{digest}"
    )
    stored = local_env.settings.data_dir / "media" / "jobs" / queue_id / "inputs" / digest
    assert stored.read_bytes() == image

    def finished() -> bytes | None:
        answer = local_env.post("/video/retrieve", {"model": I2V, "queue_id": queue_id}, client.key)
        return answer.content if answer.headers["content-type"] == "video/mp4" else None

    with av.open(
        io.BytesIO(wait_until(finished, timeout=90, interval=RETRIEVE_POLL_S)), "r"
    ) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(first.astype(int) - np.array([30, 140, 220])).mean() < 8


def test_every_media_field_takes_remote_urls(local_env: Env, server: MediaServer) -> None:
    client = Client(local_env)
    response = client.queue(
        **r2v(
            reference_image_urls=[server.serve("/a.png", coffee_png())],
            reference_video_urls=[server.serve("/b.mp4", clip(3.0))],
            reference_audio_urls=[server.serve("/c.mp3", mp3(3.0))],
            audio_url=server.serve("/d.wav", wav(2.5)),
        )
    )
    assert response.status_code == 200, response.text
    assert sorted(path for path, _ in server.hits) == ["/a.png", "/b.mp4", "/c.mp3", "/d.wav"]


def test_remote_file_over_the_cap_is_refused_while_streaming(
    local_env: Env, server: MediaServer
) -> None:
    endless = 200 * 1024 * 1024
    url = server.serve("/endless.wav", endless_limit=endless)
    Client(local_env).refused(
        422,
        "AUDIO_TOO_LARGE",
        "audio_url: the audio file is larger than 15 MB",
        **t2v(audio_url=url),
    )
    assert server.streamed < endless


def test_remote_error_status_names_the_field(local_env: Env, server: MediaServer) -> None:
    Client(local_env).refused(
        400, "MEDIA_FETCH_FAILED", "answered HTTP 404", **i2v(server.url("/missing.png"))
    )


def test_remote_image_is_decoded_like_a_data_url(local_env: Env, server: MediaServer) -> None:
    Client(local_env).refused(
        400,
        "CORRUPTED_IMAGE",
        "image_url:",
        **i2v(server.serve("/fake.png", b"not an image at all")),
    )


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_urls_are_refused_without_contacting_them(
    client: Client, server: MediaServer, host: str
) -> None:
    server.serve("/a.png", face_png())
    client.refused(
        400, "MEDIA_URL_NOT_ALLOWED", "a loopback address", **i2v(server.url("/a.png", host=host))
    )
    assert server.hits == []


def test_ipv6_loopback_is_refused(client: Client) -> None:
    client.refused(
        400,
        "MEDIA_URL_NOT_ALLOWED",
        "image_url: ::1 resolves to ::1, a loopback",
        **i2v("http://[::1]:9/a.png"),
    )


@pytest.fixture
def env_allowing_one_address(settings: Settings) -> Iterator[Env]:
    """The app allowed to fetch from 127.0.0.1 only (not the rest of loopback)."""
    allowed = [ipaddress.ip_network("127.0.0.1/32")]
    yield from build_env(settings.model_copy(update={"media_allowed_networks": allowed}))


def test_redirect_from_an_allowed_server_to_loopback_is_refused(
    env_allowing_one_address: Env, server: MediaServer
) -> None:
    with running("127.0.0.2") as inner:
        target = inner.serve("/secret.png", face_png())
        url = server.serve("/a.png", status=302, headers={"Location": target})
        Client(env_allowing_one_address).refused(
            400,
            "MEDIA_URL_NOT_ALLOWED",
            "image_url: 127.0.0.2 resolves to 127.0.0.2, a loopback address",
            **i2v(url),
        )
        assert [path for path, _ in server.hits] == ["/a.png"]
        assert inner.hits == []


def test_audio_url_counts_as_a_reference_audio_on_seedance_r2v(client: Client) -> None:
    client.refused(
        422,
        "AUDIO_DURATION_TOO_LONG",
        "the reference audio clips last 20.0 s together; at most 15 s in all",
        **r2v(
            reference_video_urls=[data_url(clip(3.0))],
            audio_url=data_url(wav(10.0)),
            reference_audio_urls=[data_url(wav(10.0))],
        ),
    )


def test_video_url_over_300_s_is_too_long(client: Client) -> None:
    client.refused(
        422,
        "VIDEO_DURATION_TOO_LONG",
        "video_url: the video lasts 301.0 s; at most 300 s is allowed",
        model=V2V,
        prompt="x",
        duration="Auto",
        video_url=data_url(clip(301.0, fps=1, size=16)),
    )


def test_a_playlist_posing_as_video_is_refused_without_fetching_its_urls(
    local_env: Env, server: MediaServer
) -> None:
    segment = server.serve("/segment.ts", clip(2.0))
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n{segment}\n#EXT-X-ENDLIST\n".encode()
    Client(local_env).refused(
        400,
        "INVALID_VIDEO_FORMAT",
        "video_url: the file is not MP4/MOV or WebM video",
        model=V2V,
        prompt="x",
        duration="Auto",
        video_url=data_url(playlist, "video/mp4"),
    )
    assert server.hits == [], "FFmpeg's HLS demuxer was never given the file"


def test_an_unknown_key_in_an_element_is_refused(client: Client) -> None:
    image = data_url(coffee_png())
    client.refused(
        400,
        "INVALID_REQUEST",
        "elements[0].extra_url is not a media field",
        model="kling-o3-pro-reference-to-video",
        prompt="@Element1",
        duration="5s",
        elements=[{"frontal_image_url": image, "extra_url": image}],
    )


def test_element_images_are_checked_with_their_path(client: Client) -> None:
    client.refused(
        400,
        "CORRUPTED_IMAGE",
        "elements[0].reference_image_urls[1]:",
        model="kling-o3-pro-reference-to-video",
        prompt="@Element1",
        duration="5s",
        elements=[
            {
                "frontal_image_url": data_url(coffee_png()),
                "reference_image_urls": [data_url(coffee_png()), data_url(b"GIF89a broken")],
            }
        ],
    )
