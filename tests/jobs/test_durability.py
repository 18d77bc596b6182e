"""A killed worker or a restarted server loses no job."""

from __future__ import annotations

import os
import signal
import threading

from fastapi.testclient import TestClient

from tests.conftest import Env, load_job, wait_until
from tests.media_files import duration_s
from videoqueue.api.app import create_app
from videoqueue.jobs.states import JobState
from videoqueue.orphans import stop_when_orphaned
from videoqueue.workers import Supervisor, restart_pause

MODEL = "wan-2.5-preview-text-to-video"


def test_worker_killed_mid_job_is_replaced_and_the_job_completes(env: Env) -> None:
    key = env.make_key()
    body = {"model": MODEL, "prompt": "survive a crash", "duration": "10s", "resolution": "1080p"}
    queue_id = env.post("/video/queue", body, key).json()["queue_id"]
    supervisor = Supervisor(env.settings, 1)
    supervisor.start()
    try:
        wait_until(lambda: load_job(env.db, queue_id).state == JobState.RUNNING)
        victim = supervisor.processes[0]
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGKILL)
        wait_until(
            lambda: supervisor.processes[0] is not victim and supervisor.processes[0].is_alive()
        )
        wait_until(lambda: load_job(env.db, queue_id).state == JobState.COMPLETED, timeout=120)
    finally:
        supervisor.stop()
    job = load_job(env.db, queue_id)
    assert job.attempts == 2
    response = env.post("/video/retrieve", {"model": MODEL, "queue_id": queue_id}, key)
    assert response.headers["content-type"] == "video/mp4"
    assert abs(duration_s(response.content) - 10.0) < 0.1


def test_restarting_the_app_keeps_queued_and_finished_jobs(env: Env) -> None:
    key = env.make_key()
    body = {"model": MODEL, "prompt": "persist me", "duration": "5s", "resolution": "480p"}
    finished = env.post("/video/queue", body, key).json()["queue_id"]
    supervisor = Supervisor(env.settings, 1)
    supervisor.start()
    wait_until(lambda: load_job(env.db, finished).state == JobState.COMPLETED)
    supervisor.stop()
    queued = env.post("/video/queue", body, key).json()["queue_id"]
    env.client.close()

    # A second app over the same data dir, as after `serve` restarts.
    with TestClient(create_app(env.settings)) as client:
        headers = {"Authorization": f"Bearer {key}"}
        done = client.post(
            "/api/v1/video/retrieve", headers=headers, json={"model": MODEL, "queue_id": finished}
        )
        assert done.headers["content-type"] == "video/mp4" and len(done.content) > 1000
        waiting = client.post(
            "/api/v1/video/retrieve", headers=headers, json={"model": MODEL, "queue_id": queued}
        )
        assert waiting.json()["status"] == "PROCESSING"


def test_a_worker_that_keeps_dying_at_start_is_restarted_ever_more_slowly() -> None:
    assert [restart_pause(n) for n in (0, 1, 2, 3, 6, 7, 100)] == [0, 1, 3, 7, 60, 60, 60]


def test_a_worker_whose_supervisor_is_gone_stops() -> None:
    stop = threading.Event()
    watcher = threading.Thread(target=stop_when_orphaned, args=(os.getppid(), stop))
    watcher.start()
    assert not stop.wait(1.5), "the supervisor (our parent) is alive"
    stop.set()
    watcher.join()
    orphaned = threading.Event()
    threading.Thread(target=stop_when_orphaned, args=(-1, orphaned), daemon=True).start()
    assert orphaned.wait(10), "a different parent means the supervisor died"
