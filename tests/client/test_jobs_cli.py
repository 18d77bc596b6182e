"""`videoqueue jobs list|show|cancel`, and Ctrl-C while `generate` waits, run in this process
with their output captured, against a real server (no worker: jobs wait in the queue) and one
without the job routes, as Venice is."""

from __future__ import annotations

import io
import json
import re
import sys
from typing import Any

import pytest

from tests.accounts import account_of, balance
from tests.client.conftest import RequestLog
from tests.conftest import Env, load_job
from videoqueue.cli import main
from videoqueue.client import Client, QueuedJob
from videoqueue.jobs.states import JobState

T2V = "wan-2.5-preview-text-to-video"
REQUEST: dict[str, Any] = {"model": T2V, "prompt": "a kite", "duration": "5s"}


def _point_at(monkeypatch: pytest.MonkeyPatch, base_url: str, key: str) -> None:
    """The environment `generate` and `jobs` read their server and key from; a wide terminal
    so that rich's tables keep each id on one line."""
    monkeypatch.setenv("VIDEOQUEUE_BASE_URL", base_url)
    monkeypatch.setenv("VIDEOQUEUE_API_KEY", key)
    monkeypatch.setenv("COLUMNS", "200")


def _answer(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))


def _queue(base_url: str, key: str, count: int) -> list[str]:
    with Client(base_url, api_key=key) as client:
        return [client.queue(**REQUEST).queue_id for _ in range(count)]


def test_jobs_list_prints_a_table_and_json_page_by_page(
    env: Env, api_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = env.make_key()
    _point_at(monkeypatch, api_url, key)
    ids = _queue(api_url, key, 3)

    assert main(["jobs", "list"]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if any(i in line for i in ids)]
    assert [next(i for i in ids if i in row) for row in rows] == ids[::-1]
    assert all(T2V in row and "queued (position" in row and "0%" in row for row in rows)

    assert main(["jobs", "list", "--limit", "2", "--json"]) == 0
    page = json.loads(capsys.readouterr().out)
    assert [job["queue_id"] for job in page["data"]] == [ids[2], ids[1]]
    assert page["next_cursor"] == ids[1]
    assert page["data"][0]["status"] == "QUEUED" and page["data"][0]["created_at"]

    assert main(["jobs", "list", "--limit", "2"]) == 0
    assert f"--cursor {ids[1]}" in capsys.readouterr().err

    assert main(["jobs", "list", "--limit", "1", "--all", "--json"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert [job["queue_id"] for job in every["data"]] == ids[::-1]
    assert every["next_cursor"] is None

    assert main(["jobs", "list", "--state", "cancelled", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["data"] == []
    assert main(["jobs", "list", "--state", "nonsense"]) == 1
    assert "400" in capsys.readouterr().err


def test_jobs_show_prints_state_position_model_and_times(
    env: Env,
    api_url: str,
    api_requests: RequestLog,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = env.make_key()
    _point_at(monkeypatch, api_url, key)
    (queue_id,) = _queue(api_url, key, 1)
    (theirs,) = _queue(api_url, env.make_key(), 1)

    api_requests.lines.clear()
    assert main(["jobs", "show", queue_id]) == 0
    assert api_requests.lines == [f"GET /api/v1/video/jobs/{queue_id}"]  # one job, no paging
    pairs = [
        re.split(r"\s{2,}", line.strip(), maxsplit=1)
        for line in capsys.readouterr().out.splitlines()
    ]
    shown = {name: value for name, value in pairs}
    assert (shown["queue id"], shown["model"], shown["state"]) == (queue_id, T2V, "queued")
    assert shown["progress"] == "0%" and shown["queue position"].isdigit()
    assert shown["created"] != "-"
    assert shown["finished"] == "-" and shown["failure"] == "-"

    assert main(["jobs", "show", queue_id, "--json"]) == 0
    job = json.loads(capsys.readouterr().out)
    assert (job["queue_id"], job["status"], job["failure"]) == (queue_id, "QUEUED", None)

    for missing in ("00000000-0000-4000-8000-000000000000", theirs):
        assert main(["jobs", "show", missing]) == 1
        err = capsys.readouterr().err
        assert "404 MEDIA_NOT_FOUND" in err and "does not support" not in err


def test_jobs_cancel_asks_then_cancels_and_refuses_an_ended_job(
    env: Env, api_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    account = env.make_account(balance_usd=10)
    key = env.make_key(account)
    _point_at(monkeypatch, api_url, key)
    kept, cancelled = _queue(api_url, key, 2)

    _answer(monkeypatch, "n\n")
    assert main(["jobs", "cancel", kept]) == 1
    assert f"job {kept} not cancelled" in capsys.readouterr().err
    assert load_job(env.db, kept).state is JobState.QUEUED

    _answer(monkeypatch, "y\n")
    assert main(["jobs", "cancel", cancelled]) == 0
    err = capsys.readouterr().err
    assert f"Cancel {T2V} job {cancelled}" in err and f"job {cancelled} cancelled" in err
    assert load_job(env.db, cancelled).state is JobState.CANCELLED

    assert main(["jobs", "cancel", cancelled, "--yes"]) == 1
    assert "409" in capsys.readouterr().err
    assert main(["jobs", "cancel", kept, "--yes"]) == 0
    assert load_job(env.db, kept).state is JobState.CANCELLED
    assert balance(env, account) == 10_000_000  # both refunded in full


def _interrupted_wait(self: Client, job: QueuedJob, **_: Any) -> None:
    raise KeyboardInterrupt


def _generate_then_ctrl_c(monkeypatch: pytest.MonkeyPatch, base_url: str, key: str) -> int:
    """`generate` against `base_url`, interrupted while it waits, the prompt answered yes."""
    _point_at(monkeypatch, base_url, key)
    monkeypatch.setattr(Client, "wait", _interrupted_wait)
    _answer(monkeypatch, "y\n")
    return main(["generate", "a kite", "-m", T2V, "--duration", "5s"])


def test_ctrl_c_in_generate_asks_and_cancels_through_video_cancel(
    env: Env, api_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    account = env.make_account(balance_usd=10)
    assert _generate_then_ctrl_c(monkeypatch, api_url, env.make_key(account)) == 130
    err = capsys.readouterr().err
    queue_id = err.split("queued ")[1].split()[2]
    assert f"Cancel job {queue_id}?" in err and f"job {queue_id} cancelled" in err
    job = load_job(env.db, queue_id)
    assert job.state is JobState.CANCELLED  # cancelled, not deleted as /video/complete does
    assert balance(env, account) == 10_000_000


def test_ctrl_c_on_a_server_that_cannot_cancel_says_the_job_keeps_running(
    env: Env, venice_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _generate_then_ctrl_c(monkeypatch, venice_url, env.make_key()) == 130
    captured = capsys.readouterr()
    queue_id = captured.out.strip()
    assert f"cannot cancel jobs: job {queue_id} keeps running (model {T2V})" in captured.err
    assert load_job(env.db, queue_id).state is JobState.QUEUED

    assert main(["jobs", "list"]) == 1
    assert "this server does not support listing jobs" in capsys.readouterr().err
    assert main(["jobs", "show", queue_id]) == 1
    assert "this server does not support reading a job" in capsys.readouterr().err


def test_generate_sends_its_seed_to_the_job(
    env: Env, api_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _point_at(monkeypatch, api_url, env.make_key())
    monkeypatch.setattr(Client, "wait", _interrupted_wait)  # no worker here: stop waiting
    _answer(monkeypatch, "n\n")
    assert main(["generate", "a kite", "-m", T2V, "--duration", "5s", "--seed", "7"]) == 130
    queue_id = capsys.readouterr().err.split("queued ")[1].split()[2]
    assert load_job(env.db, queue_id).job_spec.seed == 7


def test_generate_takes_its_server_and_key_from_flags_and_turns_audio_on_or_off(
    env: Env, api_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The flags win over an environment that points nowhere.
    _point_at(monkeypatch, "http://127.0.0.1:9/api/v1", "vq_wrong")
    monkeypatch.setattr(Client, "wait", _interrupted_wait)  # no worker here: stop waiting
    key = env.make_key()
    model = "kling-2.6-pro-text-to-video"  # audio_configurable, priced x1.25 with sound
    for flag, audio, quote in (("--no-audio", False, "$0.35"), ("--audio", True, "$0.44")):
        _answer(monkeypatch, "n\n")
        command = ["generate", "a kite", "-m", model, "--duration", "5s", flag]
        assert main([*command, "--base-url", api_url, "--api-key", key]) == 130
        err = capsys.readouterr().err
        assert f"quote: {quote} USD" in err
        job = load_job(env.db, err.split("queued ")[1].split()[2])
        assert job.job_spec.audio is audio
        assert job.account_id == account_of(env, key)
