"""`wait()` against a real worker on the `gated` fixture engine: the callback hears the job
queued behind another, then running at the engine's reported half, then done; and `timeout`
gives up on a job that does not move."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Env
from videoqueue.client import (
    AsyncClient,
    Client,
    Progress,
    QueuedJob,
    ServerError,
    WaitTimedOut,
)
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor

MODEL = "wan-2.5-preview-text-to-video"
GATED = {"gated": "tests.engines.fixture_engines:Gated"}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The usual test settings, with MODEL bound to the `gated` fixture engine."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f'[models."{MODEL}"]\nengine = "gated"\n')
    return settings.model_copy(update={"engines": GATED, "catalog_path": catalog})


def _queue(client: Client, gate: Path) -> QueuedJob:
    return client.queue(model=MODEL, prompt=f"gate:{gate}", duration="5s")


def _opening_gates(ahead: Path, own: Path) -> tuple[list[Progress], Callable[[Progress], None]]:
    """What the callback heard, and the callback: it lets the job ahead finish once it has
    heard this one queued, and this one once it has heard it half done."""
    seen: list[Progress] = []

    def heard(progress: Progress) -> None:
        seen.append(progress)
        if progress.state == "QUEUED":
            ahead.touch()
        if progress.state == "PROCESSING" and progress.fraction == 0.5:
            own.touch()

    return seen, heard


def _assert_queued_then_half_then_done(seen: list[Progress]) -> None:
    states = [p.state for p in seen]
    assert states[0] == "QUEUED" and seen[0].queue_position in (0, 1), seen
    assert seen[0].fraction == 0.0
    running = [p for p in seen if p.state == "PROCESSING"]
    assert states.index("PROCESSING") > states.index("QUEUED")
    assert all(p.queue_position is None for p in running)
    fractions = [p.fraction for p in running]
    assert 0.5 in fractions and fractions == sorted(fractions), fractions  # type: ignore[type-var]
    half = next(p for p in running if p.fraction == 0.5)
    assert half.eta_s == pytest.approx(half.elapsed_s)  # as long again as it has taken
    assert states[-1] == "COMPLETED" and seen[-1].fraction == 1.0
    assert states.count("COMPLETED") == 1
    assert [p.elapsed_s for p in seen] == sorted(p.elapsed_s for p in seen)


def test_wait_reports_the_queue_the_engines_progress_and_the_end(
    env: Env, api_url: str, tmp_path: Path
) -> None:
    ahead, own = tmp_path / "ahead", tmp_path / "own"
    seen, heard = _opening_gates(ahead, own)
    supervisor = Supervisor(env.settings, 1)
    with Client(api_url, api_key=env.make_key()) as client:
        _queue(client, ahead)
        job = _queue(client, own)
        supervisor.start()
        try:
            status = client.wait(job, on_progress=heard, poll_interval=0.05, timeout=60)
        finally:
            supervisor.stop()
    assert status.video == b"gated"
    _assert_queued_then_half_then_done(seen)


def test_the_async_wait_reports_the_same(env: Env, api_url: str, tmp_path: Path) -> None:
    ahead, own = tmp_path / "ahead", tmp_path / "own"
    seen, heard = _opening_gates(ahead, own)
    key = env.make_key()
    with Client(api_url, api_key=key) as client:
        _queue(client, ahead)
        job = _queue(client, own)

    async def waited() -> bytes | None:
        async with AsyncClient(api_url, api_key=key) as client:
            status = await client.wait(job, on_progress=heard, poll_interval=0.05, timeout=60)
            return status.video

    supervisor = Supervisor(env.settings, 1)
    supervisor.start()
    try:
        assert asyncio.run(waited()) == b"gated"
    finally:
        supervisor.stop()
    _assert_queued_then_half_then_done(seen)


def test_wait_gives_up_at_its_timeout(env: Env, api_url: str, tmp_path: Path) -> None:
    seen: list[Progress] = []
    with Client(api_url, api_key=env.make_key()) as client:
        job = _queue(client, tmp_path / "never")  # no worker runs: it stays queued
        with pytest.raises(WaitTimedOut) as caught:
            client.wait(job, on_progress=seen.append, poll_interval=0.1, timeout=0.5)
    assert job.queue_id in caught.value.message
    assert seen and all(p.state == "QUEUED" for p in seen)


def test_wait_on_a_job_that_fails_raises_the_servers_error(env: Env, api_url: str) -> None:
    supervisor = Supervisor(env.settings, 1)
    with Client(api_url, api_key=env.make_key()) as client:
        job = client.queue(model=MODEL, prompt="fail", duration="5s")
        supervisor.start()
        try:
            with pytest.raises(ServerError) as caught:
                client.wait(job, poll_interval=0.05, timeout=60)
        finally:
            supervisor.stop()
    assert caught.value.status == 500
    assert caught.value.message == "Inference processing failed"
    assert caught.value.body["credits_refunded"] is True
