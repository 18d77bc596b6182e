"""The SDK's `jobs`, `iter_jobs`, `job` and `cancel` against a real server (no worker: the jobs
wait in the queue), and against one without the routes, as Venice is."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from tests.accounts import balance
from tests.client.conftest import RequestLog
from tests.conftest import Env, load_job
from videoqueue.client import (
    AsyncClient,
    Cancelled,
    Client,
    Conflict,
    JobEnded,
    NotFound,
    NotSupported,
)
from videoqueue.jobs.states import JobState

T2V = "wan-2.5-preview-text-to-video"
REQUEST: dict[str, Any] = {"model": T2V, "prompt": "a kite", "duration": "5s"}
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def test_pages_iterates_shows_and_cancels_the_accounts_jobs(
    env: Env, api_url: str, api_requests: RequestLog
) -> None:
    account = env.make_account(balance_usd=10)
    with Client(api_url, api_key=env.make_key(account)) as client:
        ids = [client.queue(**{**REQUEST, "prompt": f"kite {n}"}).queue_id for n in range(3)]
        with Client(api_url, api_key=env.make_key()) as stranger:
            stranger.queue(**REQUEST)

        first = client.jobs(limit=2)
        assert [job.queue_id for job in first.items] == [ids[2], ids[1]]
        assert first.next_cursor == ids[1]
        last = client.jobs(limit=2, cursor=first.next_cursor)
        assert [job.queue_id for job in last.items] == [ids[0]]
        assert last.next_cursor is None
        assert [job.queue_id for job in client.iter_jobs(limit=1)] == ids[::-1]

        api_requests.lines.clear()
        shown = client.job(ids[0])
        assert api_requests.lines == [f"GET /api/v1/video/jobs/{ids[0]}"]
        assert (shown.model, shown.status, shown.progress, shown.failure) == (
            T2V,
            "QUEUED",
            0.0,
            None,
        )
        assert isinstance(shown.queue_position, int)
        assert isinstance(shown.created_at, datetime) and shown.finished_at is None

        assert client.cancel(ids[0], T2V) == Cancelled(model=T2V, queue_id=ids[0])
        assert load_job(env.db, ids[0]).state is JobState.CANCELLED
        assert balance(env, account) > 0
        cancelled = client.job(ids[0])
        assert cancelled.status == "CANCELLED" and cancelled.finished_at is not None
        assert [job.queue_id for job in client.jobs(state="cancelled").items] == [ids[0]]
        queued = client.jobs(state=["queued", "running"], model=T2V)
        assert [job.queue_id for job in queued.items] == [ids[2], ids[1]]

        with pytest.raises(JobEnded) as ended:
            client.cancel(ids[0], T2V)
        assert isinstance(ended.value, Conflict) and ended.value.status == 409
        assert "already ended" in ended.value.message
        with pytest.raises(NotFound) as unknown:
            client.cancel(UNKNOWN, T2V)
        assert not isinstance(unknown.value, NotSupported)
        assert unknown.value.code == "MEDIA_NOT_FOUND"


def test_job_of_another_account_or_none_is_not_found_not_unsupported(
    env: Env, api_url: str
) -> None:
    with Client(api_url, api_key=env.make_key()) as stranger:
        theirs = stranger.queue(**REQUEST).queue_id
    with Client(api_url, api_key=env.make_key()) as client:
        # Each id is sent whole in one path segment: a `/`, `?`, `.` or `..` names no other
        # route, and what no database holds is simply not found.
        odd = ("", ".", "..", f"{theirs}/x", "a?b=c#d", "\x00", "\ud800", "x" * 5000)
        for queue_id in (theirs, UNKNOWN, "nope", *odd):
            with pytest.raises(NotFound) as missing:
                client.job(queue_id)
            assert not isinstance(missing.value, NotSupported)
            assert (missing.value.status, missing.value.code) == (404, "MEDIA_NOT_FOUND")


def test_the_async_client_lists_iterates_shows_and_cancels(
    env: Env, api_url: str, api_requests: RequestLog
) -> None:
    async def scenario() -> list[str]:
        async with AsyncClient(api_url, api_key=env.make_key()) as client:
            ids = [(await client.queue(**REQUEST)).queue_id for _ in range(2)]
            page = await client.jobs(limit=1)
            assert [job.queue_id for job in page.items] == [ids[1]]
            assert page.next_cursor == ids[1]
            assert [job.queue_id async for job in client.iter_jobs(limit=1)] == ids[::-1]
            api_requests.lines.clear()
            shown = await client.job(ids[0])
            assert api_requests.lines == [f"GET /api/v1/video/jobs/{ids[0]}"]
            assert (shown.queue_id, shown.model, shown.status) == (ids[0], T2V, "QUEUED")
            assert shown.queue_position == 0 and shown.created_at is not None
            assert await client.cancel(ids[0], T2V) == Cancelled(model=T2V, queue_id=ids[0])
            assert (await client.job(ids[0])).status == "CANCELLED"
            with pytest.raises(JobEnded):
                await client.cancel(ids[0], T2V)
            with pytest.raises(NotFound) as missing:
                await client.job(UNKNOWN)
            assert not isinstance(missing.value, NotSupported)
            assert missing.value.code == "MEDIA_NOT_FOUND"
        return ids

    cancelled, waiting = asyncio.run(scenario())
    assert load_job(env.db, cancelled).state is JobState.CANCELLED
    assert load_job(env.db, waiting).state is JobState.QUEUED


def test_a_server_without_the_routes_says_it_does_not_support_them(
    env: Env, venice_url: str
) -> None:
    with Client(venice_url, api_key=env.make_key()) as client:
        job = client.queue(**REQUEST)
        with pytest.raises(NotSupported, match="does not support listing jobs"):
            client.jobs()
        with pytest.raises(NotSupported, match="does not support reading a job") as unread:
            client.job(job.queue_id)
        assert not isinstance(unread.value, NotFound)
        with pytest.raises(NotSupported, match="does not support cancelling jobs") as refused:
            client.cancel(job.queue_id, job.model)
        assert refused.value.status in (404, 405)
        # The Venice routes still work, and the job is untouched.
        assert client.retrieve(job).status == "PROCESSING"

    async def scenario() -> None:
        async with AsyncClient(venice_url, api_key=env.make_key()) as client:
            with pytest.raises(NotSupported):
                await client.cancel(job.queue_id, job.model)
            with pytest.raises(NotSupported, match="does not support reading a job"):
                await client.job(job.queue_id)

    asyncio.run(scenario())
    assert load_job(env.db, job.queue_id).state is JobState.QUEUED
