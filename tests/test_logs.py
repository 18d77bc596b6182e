"""Log lines carry the request's id and the job's: from a request through the app, and from a
worker's job; `serve` logs each request once, in text and in JSON."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Env, wait_until
from tests.test_cli_serve import REPO, free_port
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


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_serve_logs_each_request_once_with_its_id(tmp_path: Path, log_format: str) -> None:
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "VIDEOQUEUE_DATA_DIR": str(tmp_path / "data"),
        "VIDEOQUEUE_PORT": str(port),
        "VIDEOQUEUE_API_PROCESSES": "1",
        "VIDEOQUEUE_WORKERS": "0",
        "VIDEOQUEUE_LOG_FORMAT": log_format,
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "videoqueue.cli", "serve"],
            env=environment,
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}/api/v1/models"

    def models() -> httpx.Response | None:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(url, headers={"X-Request-ID": f"once-{log_format}"})
        except httpx.TransportError:
            return None

    try:
        assert wait_until(models, timeout=60).status_code == 200

        def request_lines() -> list[str]:
            return [line for line in log.read_text().splitlines() if "/api/v1/models" in line]

        (line,) = wait_until(request_lines, timeout=10)
        # uvicorn's access line would have come just after ours.
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        process.kill()
        process.wait()
    assert request_lines() == [line]
    if log_format == "json":
        record = json.loads(line)
        assert record["logger"] == "videoqueue.api.requests"
        assert record["request_id"] == "once-json"
        assert record["message"].startswith("GET /api/v1/models 200")
    else:
        assert " INFO videoqueue.api.requests GET /api/v1/models 200 " in line
        assert line.endswith(" request_id=once-text")
