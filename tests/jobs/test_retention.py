"""Under `retention_hours`, the reaper step of a worker deletes the stored media of jobs that
ended long enough ago and marks them EXPIRED: retrieve answers as for deleted media, their
links stop serving, and the books stay as they were."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.accounts import BODY, T2V, assert_books_balance, balance, money_settings, rows
from tests.conftest import Env, build_env, load_job, make_tiny_job, png_data_url
from videoqueue.billing.ledger import create_account
from videoqueue.billing.models import AccountKind, LedgerKind
from videoqueue.clock import ManualClock
from videoqueue.engines.base import JobInput, VideoInfo
from videoqueue.jobs import store
from videoqueue.jobs.reaper import EXPIRY_BATCH, expire_media
from videoqueue.jobs.states import JobState
from videoqueue.jobs.worker import Worker
from videoqueue.storage.factory import storage_from_url
from videoqueue.storage.layout import input_key, job_prefix, output_key

HOUR = 3600.0
MP4 = b"\x00\x00\x00\x18ftypmp42 not really a video"
PRIVATE = "grok-imagine-text-to-video-private"
I2V = "wan-2.6-image-to-video"
NOT_FOUND = {
    "error": "Media could not be found. Request may be invalid, expired, or deleted.",
    "code": "MEDIA_NOT_FOUND",
}


class WritingEngine:
    """Stands in for `preview`: writes the same few bytes for every job, at once."""

    name = "preview"

    def generate(self, job: JobInput, output_path: Path, progress: Any) -> VideoInfo:
        output_path.write_bytes(MP4)
        return VideoInfo(2, 2, 24.0, 1.0, 24, False)


@pytest.fixture
def env(tmp_path: Path, clock: ManualClock) -> Iterator[Env]:
    yield from build_env(money_settings(tmp_path, retention_hours=1), clock)


@pytest.fixture
def both_env(tmp_path: Path, database_url: str, clock: ManualClock) -> Iterator[Env]:
    """`env` on SQLite and on PostgreSQL, for the tests of the reaper's own statements."""
    yield from build_env(money_settings(tmp_path, database_url, retention_hours=1), clock)


def _worker(env: Env, clock: ManualClock) -> Worker:
    return Worker(
        db=env.db,
        storage=storage_from_url(env.settings.resolved_storage_url),
        engines={"preview": WritingEngine()},
        clock=clock,
        lease_seconds=30.0,
        heartbeat_seconds=3600,
        retention=env.settings.retention,
    )


def _stored(env: Env, job_id: str) -> list[str]:
    storage = storage_from_url(env.settings.resolved_storage_url)
    return sorted(o.key for o in storage.objects(job_prefix(job_id)))


def _retrieve(env: Env, key: str, queue_id: str, model: str = T2V) -> Any:
    return env.post("/video/retrieve", {"model": model, "queue_id": queue_id}, key)


def _kinds(env: Env, account: str) -> list[LedgerKind]:
    """The kinds of the account's ledger rows, sorted (the test clock and the top-up's
    differ)."""
    return sorted(row.kind for row in rows(env, account))


def _completed_job(
    env: Env, clock: ManualClock, body: dict[str, Any] = BODY
) -> tuple[str, dict[str, Any]]:
    """A job the worker has finished: (key, the queue answer)."""
    key = env.make_key(balance_usd=5)
    response = env.post("/video/queue", body, key)
    assert response.status_code == 200, response.text
    assert _worker(env, clock).run_once()
    return key, dict(response.json())


def test_a_completed_job_expires_once_the_retention_has_passed(
    env: Env, clock: ManualClock
) -> None:
    key, queued = _completed_job(env, clock)
    queue_id = queued["queue_id"]
    account = load_job(env.db, queue_id).account_id
    paid = balance(env, account)
    assert _retrieve(env, key, queue_id).content == MP4

    clock.advance(HOUR - 1)
    _worker(env, clock).reaper_step()
    assert load_job(env.db, queue_id).state == JobState.COMPLETED
    assert _stored(env, queue_id) == [output_key(queue_id)]

    clock.advance(2)
    _worker(env, clock).reaper_step()
    job = load_job(env.db, queue_id)
    assert job.state == JobState.EXPIRED
    assert job.media_deleted_at == clock.now()
    assert _stored(env, queue_id) == []
    gone = _retrieve(env, key, queue_id)
    assert gone.status_code == 404 and gone.json() == NOT_FOUND
    openai = env.client.get(f"/v1/videos/{queue_id}", headers={"Authorization": f"Bearer {key}"})
    assert openai.status_code == 404
    assert openai.json()["error"]["code"] == "video_not_found"
    # Expiry moves no money: the one charge stands.
    assert _kinds(env, account) == [LedgerKind.CHARGE, LedgerKind.TOP_UP]
    assert balance(env, account) == paid
    assert_books_balance(env)


def test_a_cancelled_jobs_inputs_expire_and_its_refund_stands(env: Env, clock: ManualClock) -> None:
    key = env.make_key(balance_usd=5)
    body = {**BODY, "model": I2V, "resolution": "720p", "image_url": png_data_url(64, 64)}
    queued = env.post("/video/queue", body, key)
    assert queued.status_code == 200, queued.text
    queue_id = queued.json()["queue_id"]
    assert len(_stored(env, queue_id)) == 1  # the image
    cancelled = env.post("/video/cancel", {"model": I2V, "queue_id": queue_id}, key)
    assert cancelled.status_code == 200, cancelled.text
    account = load_job(env.db, queue_id).account_id

    clock.advance(HOUR + 1)
    _worker(env, clock).reaper_step()
    assert load_job(env.db, queue_id).state == JobState.EXPIRED
    assert _stored(env, queue_id) == []
    assert _retrieve(env, key, queue_id, I2V).json() == NOT_FOUND
    assert _kinds(env, account) == [LedgerKind.CHARGE, LedgerKind.REFUND, LedgerKind.TOP_UP]
    assert balance(env, account) == 5_000_000
    assert_books_balance(env)


def test_the_download_link_of_an_expired_job_answers_410(env: Env, clock: ManualClock) -> None:
    body = {"model": PRIVATE, "prompt": "a lantern", "duration": "1s", "resolution": "480p"}
    key, queued = _completed_job(env, clock, body)
    link = urlparse(queued["download_url"]).path
    assert env.client.get(link).content == MP4

    clock.advance(HOUR + 1)
    _worker(env, clock).reaper_step()
    gone = env.client.get(link)
    assert gone.status_code == 410 and gone.json()["code"] == "MEDIA_DELETED"
    assert _retrieve(env, key, queued["queue_id"], PRIVATE).json() == NOT_FOUND


def test_openai_videos_say_when_they_expire(env: Env, clock: ManualClock) -> None:
    key = env.make_key(balance_usd=5)
    auth = {"Authorization": f"Bearer {key}"}
    create = {"model": T2V, "prompt": "a kite", "seconds": "5", "size": "854x480"}
    video = env.client.post("/v1/videos", json=create, headers=auth).json()
    assert video["status"] == "queued" and video["expires_at"] is None
    assert _worker(env, clock).run_once()
    done = env.client.get(f"/v1/videos/{video['id']}", headers=auth).json()
    assert done["status"] == "completed"
    assert done["expires_at"] == done["completed_at"] + 3600
    listed = env.client.get("/v1/videos", headers=auth).json()["data"]
    assert [v["expires_at"] for v in listed] == [done["expires_at"]]


def test_without_a_retention_media_is_kept(tmp_path: Path, clock: ManualClock) -> None:
    for env in build_env(money_settings(tmp_path), clock):
        key, queued = _completed_job(env, clock)
        queue_id = queued["queue_id"]
        clock.advance(10_000 * HOUR)
        _worker(env, clock).reaper_step()
        assert load_job(env.db, queue_id).state == JobState.COMPLETED
        assert _retrieve(env, key, queue_id).content == MP4
        video = env.client.get(f"/v1/videos/{queue_id}", headers={"Authorization": f"Bearer {key}"})
        assert video.json()["expires_at"] is None


def _ended_jobs(env: Env, clock: ManualClock, count: int) -> list[str]:
    """`count` jobs made without the API and cancelled, one a second, each with an input."""
    storage = storage_from_url(env.settings.resolved_storage_url)
    ids = []
    with env.db.transaction() as session:
        account = create_account(session, kind=AccountKind.STANDARD, clock=clock)
        for _ in range(count):
            job = make_tiny_job(session, account_id=account.id, clock=clock, model=T2V)
            store.cancel_job(session, job, clock=clock, refunded=False)
            storage.put_bytes(input_key(job.id, "0" * 64), b"png")
            ids.append(job.id)
            clock.advance(1)
    return ids


def test_a_reaper_step_expires_one_small_batch_oldest_first(
    both_env: Env, clock: ManualClock
) -> None:
    env = both_env
    ids = _ended_jobs(env, clock, EXPIRY_BATCH + 3)
    clock.advance(HOUR)
    worker = _worker(env, clock)
    worker.reaper_step()
    states = [load_job(env.db, job_id).state for job_id in ids]
    assert states == [JobState.EXPIRED] * EXPIRY_BATCH + [JobState.CANCELLED] * 3
    worker.reaper_step()
    assert {load_job(env.db, job_id).state for job_id in ids} == {JobState.EXPIRED}


def test_a_crash_after_deleting_leaves_the_job_due_and_the_next_step_expires_it(
    both_env: Env, clock: ManualClock
) -> None:
    env = both_env
    [job_id] = _ended_jobs(env, clock, 1)
    clock.advance(HOUR)
    storage = storage_from_url(env.settings.resolved_storage_url)
    with pytest.raises(RuntimeError), env.db.transaction() as session:
        assert expire_media(session, storage, clock=clock, retention=timedelta(hours=1)) == 1
        raise RuntimeError("the worker died before its transaction committed")
    assert load_job(env.db, job_id).state == JobState.CANCELLED
    assert _stored(env, job_id) == []
    _worker(env, clock).reaper_step()
    assert load_job(env.db, job_id).state == JobState.EXPIRED
