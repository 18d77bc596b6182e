"""Progress events, metrics and JSON logs of `videoqueue serve` as an operator runs it: two API
processes and a worker, each in its own process, over the `gated` fixture engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_metrics_route import samples, value
from tests.conftest import load_job, wait_until
from tests.test_cli_serve import REPO, descendants, free_port
from videoqueue.auth.keys import create_key
from videoqueue.auth.models import KeyKind
from videoqueue.billing.ledger import create_account, top_up
from videoqueue.billing.models import AccountKind
from videoqueue.clock import SystemClock
from videoqueue.db.migrate import upgrade
from videoqueue.db.session import Database
from videoqueue.jobs.states import JobState

MODEL = "wan-2.5-preview-text-to-video"
GATED = {"gated": "tests.engines.fixture_engines:Gated"}
ENDED = {JobState.COMPLETED, JobState.FAILED}

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Served:
    db: Database
    root: str
    key: str
    other_key: str
    log: Path
    gates: Path


def _key(db: Database) -> str:
    clock = SystemClock()
    with db.transaction() as session:
        account = create_account(session, kind=AccountKind.STANDARD, clock=clock)
        top_up(session, account_id=account.id, micros=100_000_000, clock=clock, note="test")
        _, secret = create_key(session, account_id=account.id, clock=clock, kind=KeyKind.INFERENCE)
    return secret


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("observed")
    data = tmp / "data"
    (data / "metrics").mkdir(parents=True)
    (data / "metrics" / "counter_1.db").write_bytes(b"left by an earlier serve")
    url = f"sqlite:///{data / 'videoqueue.db'}"
    upgrade(url)
    db = Database(url)
    catalog = tmp / "catalog.toml"
    catalog.write_text(f'[models."{MODEL}"]\nengine = "gated"\n')
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "VIDEOQUEUE_DATA_DIR": str(data),
        "VIDEOQUEUE_PORT": str(port),
        "VIDEOQUEUE_API_PROCESSES": "2",
        "VIDEOQUEUE_WORKERS": "1",
        "VIDEOQUEUE_CATALOG_PATH": str(catalog),
        "VIDEOQUEUE_ENGINES": json.dumps(GATED),
        "VIDEOQUEUE_LOG_FORMAT": "json",
        "VIDEOQUEUE_EVENTS_POLL_SECONDS": "0.1",
        "VIDEOQUEUE_HEARTBEAT_SECONDS": "0.1",
        "VIDEOQUEUE_POLL_SECONDS": "0.05",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "videoqueue.cli", "serve"], env=env, stdout=out, stderr=out
        )
    root = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            assert process.poll() is None, log.read_text()
            try:
                return httpx.get(f"{root}/api/v1/models").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(up, timeout=90, interval=0.2)
        gates = tmp / "gates"
        gates.mkdir()
        yield Served(db, root, _key(db), _key(db), log, gates)
    finally:
        for pid in descendants(process.pid):
            os.kill(pid, signal.SIGKILL)
        process.kill()
        process.wait()
        db.dispose()


def _queue(served: Served, prompt: str, headers: dict[str, str] | None = None) -> str:
    response = httpx.post(
        f"{served.root}/api/v1/video/queue",
        json={"model": MODEL, "prompt": prompt, "duration": "5s"},
        headers={"Authorization": f"Bearer {served.key}", **(headers or {})},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["queue_id"])


def _wait_ended(served: Served, *job_ids: str) -> None:
    wait_until(lambda: all(load_job(served.db, j).state in ENDED for j in job_ids), timeout=60)


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    id: str
    name: str
    data: dict[str, Any]

    @property
    def number(self) -> int:
        return int(self.id.split(".")[0])


def _events(lines: Iterator[str]) -> Iterator[Event]:
    fields: dict[str, str] = {}
    for line in lines:
        if line:
            name, _, text = line.partition(":")
            fields[name] = text.removeprefix(" ")
            continue
        if "data" in fields:
            yield Event(fields["id"], fields["event"], json.loads(fields["data"]))
        fields = {}


def _stream(client: httpx.Client, served: Served, job_id: str, last_id: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {served.key}"}
    if last_id is not None:
        headers["Last-Event-ID"] = last_id
    return client.stream(
        "GET",
        f"{served.root}/api/v1/video/events",
        params={"model": MODEL, "queue_id": job_id},
        headers=headers,
        timeout=httpx.Timeout(60.0),
    )


def test_events_follow_a_job_to_its_end_and_resume_without_repeats(served: Served) -> None:
    first_gate, second_gate = served.gates / "first", served.gates / "second"
    first = _queue(served, f"gate:{first_gate}")
    second = _queue(served, f"gate:{second_gate}")
    seen: list[Event] = []
    with httpx.Client() as client:
        with _stream(client, served, second) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events = _events(response.iter_lines())
            seen.append(next(events))
            assert seen[0].name == "queued"
            assert seen[0].data["status"] == "queued"
            assert seen[0].data["queue_position"] in (0, 1)
            first_gate.touch()  # the first job ends; the worker takes the second
            for event in events:
                seen.append(event)
                if event.data == {"status": "running", "progress": 0.5, "queue_position": None}:
                    break
        # Disconnected at the second job's gate: the server ends that stream.
        wait_until(lambda: _stream_closed(served, second), timeout=30)
        # Reconnecting says nothing until the job moves on.
        with _stream(client, served, second, last_id=seen[-1].id) as response:
            assert response.status_code == 200
            second_gate.touch()
            resumed = list(_events(response.iter_lines()))
        assert resumed, "the stream ended without its last event"
        assert resumed[-1].name == "completed"
        assert resumed[-1].data == {"status": "completed", "progress": 1.0, "queue_position": None}
        assert resumed[0].data != seen[-1].data
        numbers = [e.number for e in seen + resumed]
        assert numbers == list(range(1, len(numbers) + 1))
        for before, after in zip(seen + resumed, (seen + resumed)[1:], strict=False):
            assert before.data != after.data

        # A job that has ended answers its end, once; a client that saw it gets nothing more.
        with _stream(client, served, first) as response:
            (only,) = _events(response.iter_lines())
        assert (only.name, only.number) == ("completed", 1)
        with _stream(client, served, first, last_id=only.id) as response:
            assert response.status_code == 200
            assert list(_events(response.iter_lines())) == []


def _stream_closed(served: Served, job_id: str) -> bool:
    return any(
        line.get("job_id") == job_id and "the client went away" in line["message"]
        for line in _log_lines(served)
    )


def test_events_refuse_as_retrieve_does(served: Served) -> None:
    job_id = _queue(served, "quick")
    url = f"{served.root}/api/v1/video/events"
    query = {"model": MODEL, "queue_id": job_id}
    not_owner = httpx.get(
        url, params=query, headers={"Authorization": f"Bearer {served.other_key}"}
    )
    assert not_owner.status_code == 404
    assert not_owner.json()["code"] == "MEDIA_NOT_FOUND"
    bad_key = httpx.get(url, params=query, headers={"Authorization": "Bearer vq_nonsense"})
    assert bad_key.status_code == 401
    assert isinstance(bad_key.json()["error"], str)
    missing = httpx.get(
        url, params={"model": MODEL}, headers={"Authorization": f"Bearer {served.key}"}
    )
    assert missing.status_code == 400
    assert missing.json()["details"]["queue_id"]["_errors"]
    _wait_ended(served, job_id)


# --- metrics ------------------------------------------------------------------------------


def _scrape(served: Served) -> Scrape:
    response = httpx.get(f"{served.root}/metrics")  # from loopback: no key needed
    assert response.status_code == 200, response.text
    return samples(response.text)


def test_the_stale_metrics_folder_was_emptied_at_start(served: Served) -> None:
    folder = served.log.parent / "data" / "metrics"
    assert not (folder / "counter_1.db").exists()
    assert any(folder.iterdir()), "the processes write their metrics here"


def test_metrics_move_as_jobs_run_in_every_process(served: Served) -> None:
    duration = "videoqueue_job_duration_seconds_count"
    queue_200 = {"method": "POST", "route": "/api/v1/video/queue", "status": "200"}
    before = _scrape(served)
    jobs = [_queue(served, "quick"), _queue(served, "fast"), _queue(served, "fail")]
    _wait_ended(served, *jobs)

    expected = {
        (duration, (("engine", "gated"), ("outcome", "completed"))): 2,
        (duration, (("engine", "gated"), ("outcome", "failed"))): 1,
        ("videoqueue_job_failures_total", (("engine", "gated"), ("kind", "inference_failed"))): 1,
        ("videoqueue_refunds_total", (("reason", "failed"),)): 1,
        ("videoqueue_http_request_duration_seconds_count", tuple(queue_200.items())): 3,
        ("videoqueue_jobs", (("state", "completed"), ("model", MODEL))): 2,
        ("videoqueue_jobs", (("state", "failed"), ("model", MODEL))): 1,
    }

    def moved(scrape: Scrape) -> dict[str, float]:
        return {
            f"{name}{dict(labels)}": value(scrape, name, **dict(labels))
            - value(before, name, **dict(labels))
            for name, labels in expected
        }

    want = {f"{name}{dict(labels)}": n for (name, labels), n in expected.items()}
    # The worker counts a job just after committing its end.
    wait_until(lambda: moved(_scrape(served)) == want, timeout=30)
    # Each scrape, whichever API process answers it, sums every process's files.
    for _ in range(6):
        after = _scrape(served)
        assert moved(after) == want
    assert value(after, "videoqueue_workers_alive") == 1
    (seen,) = [v for (name, _), v in after.items() if name.startswith("videoqueue_worker_last_")]
    assert time.time() - seen < 60
    assert value(after, "videoqueue_queue_depth", engine="gated") == 0


# --- logs ---------------------------------------------------------------------------------


def _log_lines(served: Served) -> list[dict[str, Any]]:
    lines = []
    for line in served.log.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_json_logs_carry_the_request_id_and_the_job_id(served: Served) -> None:
    job_id = _queue(served, "logged", headers={"X-Request-ID": "served-request-1"})
    _wait_ended(served, job_id)

    def lines_of_job() -> list[dict[str, Any]]:
        return [line for line in _log_lines(served) if line.get("job_id") == job_id]

    lines = wait_until(lambda: len(lines_of_job()) >= 2 and lines_of_job(), timeout=30)
    requests = [line for line in lines if line.get("request_id") == "served-request-1"]
    # Ours only: uvicorn's access line is off, so the request is logged once.
    (request,) = requests
    assert request["logger"] == "videoqueue.api.requests"
    assert "/api/v1/video/queue 200" in request["message"]
    worker = [line for line in lines if line["logger"] == "videoqueue.jobs.worker"]
    assert any("claimed" in line["message"] for line in worker)
    assert {line["pid"] for line in worker}.isdisjoint({request["pid"]})
