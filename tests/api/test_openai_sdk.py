"""The official `openai` SDK, unchanged, pointed at a live videoqueue: `base_url` ending in
`/v1` and a videoqueue key. The preview engine renders real MP4s in a real worker process."""

from __future__ import annotations

import io
from collections.abc import Iterator

import av
import openai
import pytest

from tests.accounts import account_of, balance, live_server, price_micros
from tests.conftest import Env, build_env
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor

# The SDK marks `client.videos` deprecated (OpenAI's Sora API closes); the calls still work.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The Sora API is scheduled to permanently shut down:DeprecationWarning"
)

MODEL = "veo3-fast-text-to-video"
ALIASES = f'[aliases]\n"sora-2" = "{MODEL}"\n'


@pytest.fixture
def sdk_env(settings: Settings) -> Iterator[Env]:
    catalog = settings.data_dir.parent / "catalog.toml"
    catalog.write_text(ALIASES)
    yield from build_env(settings.model_copy(update={"catalog_path": catalog}))


@pytest.fixture
def base_url(sdk_env: Env) -> Iterator[str]:
    """The live server's OpenAI base URL, `http://127.0.0.1:PORT/v1`."""
    with live_server(sdk_env.client.app) as venice_base:
        yield venice_base.removesuffix("/api/v1") + "/v1"


def test_the_sdk_creates_polls_lists_downloads_and_deletes(sdk_env: Env, base_url: str) -> None:
    key = sdk_env.make_key(balance_usd=10)
    account = account_of(sdk_env, key)
    client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0)

    queued = client.videos.create(model="sora-2", prompt="a red kite", seconds="4", size="1280x720")
    assert (queued.object, queued.status, queued.model) == ("video", "queued", MODEL)
    assert (queued.seconds, queued.size, queued.prompt) == ("4", "1280x720", "a red kite")
    assert client.videos.retrieve(queued.id).id == queued.id
    quote = price_micros(sdk_env, {"model": MODEL, "duration": "4s", "resolution": "720p"})
    assert 10_000_000 - balance(sdk_env, account) == quote

    supervisor = Supervisor(sdk_env.settings, 1)
    supervisor.start()
    try:
        done = client.videos.create_and_poll(
            model="sora-2", prompt="dunes at dawn", seconds="8", size="1280x720"
        )
    finally:
        supervisor.stop()
    assert (done.status, done.progress, done.error) == ("completed", 100, None)
    assert done.completed_at is not None and done.completed_at >= done.created_at

    listed = [video.id for video in client.videos.list(order="asc", limit=1)]
    assert listed == [queued.id, done.id]  # the SDK followed `after` to the second page

    data = client.videos.download_content(done.id).read()
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        assert container.duration is not None
        assert abs(container.duration / av.time_base - 8.0) < 0.1
    thumbnail = client.videos.download_content(done.id, variant="thumbnail").read()
    assert thumbnail[:4] == b"RIFF" and thumbnail[8:12] == b"WEBP"

    removed = client.videos.delete(done.id)
    assert (removed.id, removed.deleted, removed.object) == (done.id, True, "video.deleted")
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(done.id)


def test_the_sdk_raises_its_errors_for_ours(sdk_env: Env, base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key=sdk_env.make_key(), max_retries=0)
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.create(model="sora-2", prompt="x", seconds="12", size="720x1280")
    assert refused.value.param == "seconds" and "'4' | '6' | '8'" in refused.value.message
    with pytest.raises(openai.BadRequestError) as refused:
        client.videos.create(model="sora-2", prompt="x", seconds="4", size="720x1280")
    assert refused.value.param == "size" and "'1280x720' | '404x720'" in refused.value.message
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve("no-such-video")
    stranger = openai.OpenAI(base_url=base_url, api_key="vq_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        stranger.videos.list()
    assert unauthorized.value.code == "invalid_api_key"
