"""`GET /video/jobs` (an account's jobs, filtered and paged), `GET /video/jobs/{queue_id}` (one
of them, as listed) and `POST /video/cancel` (a queued or running job cancelled and refunded
once; an ended one refused, unchanged)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.accounts import account_of, assert_books_balance, balance, price_micros, rows
from tests.conftest import Env, build_env, load_job, wait_until
from videoqueue.billing.models import LedgerKind
from videoqueue.jobs.states import JobState
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor

MODEL = "wan-2.5-preview-text-to-video"
OTHER = "wan-2.2-a14b-text-to-video"
GATED = {"gated": "tests.engines.fixture_engines:Gated"}
BODY: dict[str, Any] = {"model": MODEL, "prompt": "a kite", "duration": "5s"}


@pytest.fixture
def gated_env(settings: Settings, tmp_path: Path) -> Iterator[Env]:
    """The app with MODEL bound to the `gated` fixture engine."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f'[models."{MODEL}"]\nengine = "gated"\n')
    yield from build_env(settings.model_copy(update={"engines": GATED, "catalog_path": catalog}))


def _queue(env: Env, key: str, prompt: str = "a kite", model: str = MODEL) -> str:
    response = env.post("/video/queue", {**BODY, "model": model, "prompt": prompt}, key)
    assert response.status_code == 200, response.text
    return str(response.json()["queue_id"])


def _list(env: Env, key: str | None, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return env.client.get("/api/v1/video/jobs", params=params, headers=headers)


def _show(env: Env, key: str | None, queue_id: str) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return env.client.get(f"/api/v1/video/jobs/{quote(queue_id, safe='')}", headers=headers)


def _cancel(env: Env, key: str, queue_id: str, model: str = MODEL) -> Any:
    return env.post("/video/cancel", {"model": model, "queue_id": queue_id}, key)


def _retrieve(env: Env, key: str, queue_id: str, model: str = MODEL) -> Any:
    return env.post("/video/retrieve", {"model": model, "queue_id": queue_id}, key)


def test_lists_the_accounts_jobs_newest_first_in_pages(gated_env: Env) -> None:
    key, stranger = gated_env.make_key(), gated_env.make_key()
    ids = [_queue(gated_env, key, f"job {n}") for n in range(5)]
    _queue(gated_env, stranger, "not yours")

    first = _list(gated_env, key, limit=2)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [item["queue_id"] for item in page["data"]] == [ids[4], ids[3]]
    assert page["has_more"] is True and page["next_after"] == ids[3]
    item = page["data"][0]
    assert item["model"] == MODEL and item["status"] == "QUEUED"
    assert item["progress"] == 0.0 and item["queue_position"] == 4
    assert item["started_at"] is None and item["finished_at"] is None
    assert item["failure"] is None and item["created_at"]

    second = _list(gated_env, key, limit=2, after=page["next_after"]).json()
    third = _list(gated_env, key, limit=2, after=second["next_after"]).json()
    assert [i["queue_id"] for i in second["data"]] == [ids[2], ids[1]]
    assert [i["queue_id"] for i in third["data"]] == [ids[0]]
    assert third["has_more"] is False and third["next_after"] is None

    # The stranger sees only its own job; another account's id is no cursor for it.
    [theirs] = _list(gated_env, stranger).json()["data"]
    assert theirs["queue_id"] not in ids
    refused = _list(gated_env, stranger, after=ids[0])
    assert refused.status_code == 400 and "error" in refused.json()


def test_filters_by_state_and_model(gated_env: Env) -> None:
    key = gated_env.make_key()
    queued = _queue(gated_env, key)
    cancelled = _queue(gated_env, key)
    other = _queue(gated_env, key, model=OTHER)
    assert _cancel(gated_env, key, cancelled).status_code == 200

    def ids(**params: Any) -> list[str]:
        response = _list(gated_env, key, **params)
        assert response.status_code == 200, response.text
        return [item["queue_id"] for item in response.json()["data"]]

    assert ids(state="cancelled") == [cancelled]
    assert ids(state="QUEUED") == [other, queued]
    assert ids(state="processing", model=MODEL) == [queued]
    assert ids(state="queued,cancelled", model=MODEL) == [cancelled, queued]
    assert ids(model=OTHER) == [other]
    assert ids(state="completed") == []


@pytest.mark.parametrize(
    "params",
    [{"state": "done"}, {"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"colour": "red"}],
)
def test_bad_parameters_answer_venices_400(gated_env: Env, params: dict[str, str]) -> None:
    response = _list(gated_env, gated_env.make_key(), **params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Invalid request parameters"
    [issue] = body["issues"]
    if "colour" in params:
        assert issue["code"] == "unrecognized_keys" and issue["keys"] == ["colour"]
    else:
        assert issue["path"] == [next(iter(params))]


def test_shows_one_job_as_the_list_does(gated_env: Env) -> None:
    key = gated_env.make_key()
    first, second = _queue(gated_env, key, "first"), _queue(gated_env, key, "second")
    listed = {item["queue_id"]: item for item in _list(gated_env, key).json()["data"]}

    for queue_id in (first, second):
        response = _show(gated_env, key, queue_id)
        assert response.status_code == 200, response.text
        assert response.json() == listed[queue_id]
    shown = _show(gated_env, key, second).json()
    assert (shown["queue_id"], shown["model"], shown["status"]) == (second, MODEL, "QUEUED")
    assert shown["queue_position"] == 1 and shown["progress"] == 0.0
    assert shown["created_at"] and shown["started_at"] is None and shown["failure"] is None

    assert _cancel(gated_env, key, first).status_code == 200
    cancelled = _show(gated_env, key, first).json()
    assert cancelled["status"] == "CANCELLED" and cancelled["finished_at"] is not None
    assert cancelled["queue_position"] is None
    assert _show(gated_env, key, second).json()["queue_position"] == 0


def test_another_accounts_job_or_none_is_retrieves_404(gated_env: Env) -> None:
    owner, stranger = gated_env.make_key(), gated_env.make_key()
    queue_id = _queue(gated_env, owner)
    expected = _retrieve(gated_env, stranger, queue_id)
    assert expected.status_code == 404 and expected.json()["code"] == "MEDIA_NOT_FOUND"
    for key, job in (
        (stranger, queue_id),
        (owner, "00000000-0000-4000-8000-000000000000"),
        (owner, "nope"),
        (owner, f"{queue_id}/extra"),
    ):
        response = _show(gated_env, key, job)
        assert (response.status_code, response.json()) == (404, expected.json())
    assert _show(gated_env, owner, queue_id).status_code == 200


@pytest.mark.parametrize("queue_id", ["\ud800", "abc\u0000def", "x" * 5000, "%ff", "caf\u00e9"])
def test_an_id_no_database_can_hold_is_simply_not_found_on_each_database(
    settings: Settings, database_url: str, queue_id: str
) -> None:
    for env in build_env(settings.model_copy(update={"database_url": database_url})):
        key = env.make_key()
        _queue(env, key)
        # A lone surrogate goes out as the bytes of its UTF-8 form, as a lax client sends it.
        path = quote(queue_id, safe="", errors="surrogatepass")
        response = env.client.get(
            f"/api/v1/video/jobs/{path}", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 404, response.text
        assert response.json()["code"] == "MEDIA_NOT_FOUND"


def test_the_routes_need_a_key(gated_env: Env) -> None:
    """As every Venice route: no credentials is x402's 402, a bad key 401."""
    assert _list(gated_env, None).status_code == 402
    listed = _list(gated_env, "vq_not_a_key")
    assert listed.status_code == 401 and "error" in listed.json()
    queue_id = _queue(gated_env, gated_env.make_key())
    assert _show(gated_env, None, queue_id).status_code == 402
    shown = _show(gated_env, "vq_not_a_key", queue_id)
    assert shown.status_code == 401 and "error" in shown.json()
    body = {"model": MODEL, "queue_id": "x"}
    assert gated_env.post("/video/cancel", body).status_code == 402
    cancelled = gated_env.post("/video/cancel", body, "vq_not_a_key")
    assert cancelled.status_code == 401 and "error" in cancelled.json()


def test_cancel_of_a_queued_job_refunds_it_once(gated_env: Env) -> None:
    key = gated_env.make_key(balance_usd=10)
    account = account_of(gated_env, key)
    before = balance(gated_env, account)
    queue_id = _queue(gated_env, key)
    assert balance(gated_env, account) == before - price_micros(gated_env, BODY)

    response = _cancel(gated_env, key, queue_id)
    assert response.status_code == 200 and response.json() == {"success": True}
    assert load_job(gated_env.db, queue_id).state == JobState.CANCELLED
    assert balance(gated_env, account) == before
    assert len(rows(gated_env, account, LedgerKind.REFUND)) == 1

    # A second cancel is refused and changes nothing; retrieve answers a cancelled job's 404.
    again = _cancel(gated_env, key, queue_id)
    assert again.status_code == 409
    assert again.json() == {"error": "The job has already ended: it is cancelled"}
    assert balance(gated_env, account) == before
    assert len(rows(gated_env, account, LedgerKind.REFUND)) == 1
    assert _retrieve(gated_env, key, queue_id).status_code == 404
    listed = _list(gated_env, key).json()["data"]
    assert [(i["status"], i["finished_at"] is not None) for i in listed] == [("CANCELLED", True)]
    assert_books_balance(gated_env)


def test_cancel_of_someone_elses_or_no_job_is_retrieves_404(gated_env: Env) -> None:
    owner, stranger = gated_env.make_key(), gated_env.make_key()
    queue_id = _queue(gated_env, owner)
    expected = _retrieve(gated_env, stranger, queue_id)
    assert expected.status_code == 404
    for key, model, job in (
        (stranger, MODEL, queue_id),
        (owner, OTHER, queue_id),
        (owner, MODEL, "nope"),
    ):
        response = _cancel(gated_env, key, job, model)
        assert (response.status_code, response.json()) == (404, expected.json())
    assert load_job(gated_env.db, queue_id).state == JobState.QUEUED
    bad = gated_env.post("/video/cancel", {"model": MODEL}, owner)
    assert bad.status_code == 400 and bad.json()["issues"][0]["path"] == ["queue_id"]


def test_cancel_of_a_running_job_stops_its_engine_and_refunds(
    gated_env: Env, tmp_path: Path
) -> None:
    key = gated_env.make_key(balance_usd=10)
    account = account_of(gated_env, key)
    before = balance(gated_env, account)
    running = _queue(gated_env, key, f"gate:{tmp_path / 'never'}")
    after = _queue(gated_env, key, "after it")

    supervisor = Supervisor(gated_env.settings, 1)
    supervisor.start()
    try:
        wait_until(lambda: _retrieve(gated_env, key, running).json()["progress"] == 0.5)
        item = _list(gated_env, key, state="running").json()["data"][0]
        assert item["queue_id"] == running and item["started_at"] is not None
        assert item["queue_position"] is None and item["progress"] == 0.5

        assert _cancel(gated_env, key, running).status_code == 200
        assert _retrieve(gated_env, key, running).status_code == 404
        # The one worker's engine stopped at its next step: the job behind it runs and ends.
        wait_until(lambda: _retrieve(gated_env, key, after).headers["content-type"] == "video/mp4")
    finally:
        supervisor.stop()
    assert load_job(gated_env.db, running).state == JobState.CANCELLED
    assert balance(gated_env, account) == before - price_micros(gated_env, BODY)
    refunds = rows(gated_env, account, LedgerKind.REFUND)
    assert [(r.job_id, r.note) for r in refunds] == [(running, "cancelled while it ran")]
    assert_books_balance(gated_env)


def test_cancel_of_a_finished_job_is_refused_and_changes_nothing(gated_env: Env) -> None:
    key = gated_env.make_key(balance_usd=10)
    account = account_of(gated_env, key)
    done = _queue(gated_env, key, "at once")
    supervisor = Supervisor(gated_env.settings, 1)
    supervisor.start()
    try:
        wait_until(lambda: load_job(gated_env.db, done).state == JobState.COMPLETED)
    finally:
        supervisor.stop()
    paid = balance(gated_env, account)

    response = _cancel(gated_env, key, done)
    assert response.status_code == 409
    assert response.json() == {"error": "The job has already ended: it is completed"}
    assert load_job(gated_env.db, done).state == JobState.COMPLETED
    assert balance(gated_env, account) == paid
    assert rows(gated_env, account, LedgerKind.REFUND) == []
    assert _retrieve(gated_env, key, done).headers["content-type"] == "video/mp4"
