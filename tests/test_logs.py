"""JSON log lines carry the request's id and the job's: from a request through the app, and
from a worker's job."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Env
from videoqueue.logs import handler_for, log_fields, resolve_log_format

MODEL = "wan-2.5-preview-text-to-video"


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What `videoqueue.*` loggers write while the test runs, through the JSON handler."""
    handler = handler_for("json")
    out = io.StringIO()
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    logger = logging.getLogger("videoqueue")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def parsed(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_request_logs_its_id_and_its_job(env: Env, json_lines: io.StringIO) -> None:
    key = env.make_key()
    body = {"model": MODEL, "prompt": "a kite", "duration": "5s"}
    queued = env.post("/video/queue", body, key, headers={"X-Request-ID": "req-queue-1"})
    assert queued.status_code == 200
    assert queued.headers["x-request-id"] == "req-queue-1"
    job_id = queued.json()["queue_id"]
    polled = env.post("/video/retrieve", {"model": MODEL, "queue_id": job_id}, key)

    lines = parsed(json_lines)
    queue_line = next(line for line in lines if line.get("request_id") == "req-queue-1")
    assert queue_line["job_id"] == job_id
    assert queue_line["logger"] == "videoqueue.api.requests"
    assert "/api/v1/video/queue 200" in queue_line["message"]
    assert {"time", "level", "pid"} <= set(queue_line)
    retrieve_line = next(
        line for line in lines if line.get("request_id") == polled.headers["x-request-id"]
    )
    assert retrieve_line["job_id"] == job_id


def test_a_job_scope_marks_every_record_and_an_error_keeps_its_traceback(
    json_lines: io.StringIO,
) -> None:
    log = logging.getLogger("videoqueue.jobs.worker")
    with log_fields(job_id="job-1"):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("job %s crashed", "job-1")
    log.info("outside")
    inside, outside = parsed(json_lines)
    assert inside["job_id"] == "job-1"
    assert inside["message"] == "job job-1 crashed"
    assert inside["level"] == "ERROR"
    assert "RuntimeError: boom" in inside["exc_info"]
    assert "job_id" not in outside


@pytest.mark.parametrize(("terminal", "expected"), [(True, "text"), (False, "json")])
def test_auto_is_text_on_a_terminal_and_json_elsewhere(
    monkeypatch: pytest.MonkeyPatch, terminal: bool, expected: str
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    assert resolve_log_format("auto") == expected
    assert resolve_log_format("text") == "text"
    assert resolve_log_format("json") == "json"
