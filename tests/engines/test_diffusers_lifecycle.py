"""The engine lifecycle with the diffusers engine, through the HTTP API: a cancel stops the
denoising loop, a time limit fails the job refunded, and a corrupt weights folder uses up no job.

Fixture engines check the same rules in tests/jobs/test_engine_lifecycle.py; here a real
pipeline loaded from a folder is what has to stop.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tests.accounts import balance
from tests.accounts import price_micros as price_of
from tests.conftest import Env, load_job, retrieve_error, wait_until
from tests.engines.diffusers_jobs import bound_model, operator_settings
from tests.engines.diffusers_pipelines import save_tiny_wan
from videoqueue.jobs.states import JobState
from videoqueue.settings import Settings
from videoqueue.storage.factory import storage_from_url
from videoqueue.storage.layout import output_key
from videoqueue.workers import Supervisor, build_worker

ENDLESS_STEPS = 100_000
"""Enough denoising steps that only a cancel or a time limit ends the job."""
TIME_LIMIT_S = 4
SETUP_RETRY_S = 15


OVERLAY = (
    bound_model("quick", "wan-quick", 16)
    + bound_model("endless", "wan-endless", 16)
    + bound_model("limited", "wan-endless", 16, extra=f"max_run_seconds = {TIME_LIMIT_S}")
    + bound_model("broken", "wan-broken", 16)
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_wan(tmp_path_factory.mktemp("wan") / "t2v", "t2v")


@pytest.fixture
def settings(tmp_path: Path, folder: Path) -> Settings:
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    weights = broken / "transformer" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    factory = "videoqueue.engines.diffusers:load?family=wan21&path={}&steps={}"
    settings = operator_settings(
        tmp_path,
        OVERLAY,
        {
            "wan-quick": factory.format(folder, 2),
            "wan-endless": factory.format(folder, ENDLESS_STEPS),
            "wan-broken": factory.format(broken, 2),
        },
    )
    # A worker sets up a failed engine again in the background: retried every second, the
    # broken folder's loads would take the CPU the other engines' jobs need.
    return settings.model_copy(
        update={"heartbeat_seconds": 0.2, "engine_setup_retry_seconds": SETUP_RETRY_S}
    )


def queue(env: Env, key: str, model_id: str) -> str:
    body = {"model": model_id, "prompt": "a cat", "duration": "1s", "resolution": "256p"}
    response = env.post("/video/queue", {**body, "aspect_ratio": "1:1"}, key)
    assert response.status_code == 200, response.text
    return str(response.json()["queue_id"])


def price_micros(env: Env, model_id: str) -> int:
    body = {"model": model_id, "duration": "1s", "resolution": "256p", "aspect_ratio": "1:1"}
    return price_of(env, body)


def test_a_cancel_mid_denoise_frees_the_worker_for_the_next_job(
    env: Env, workers: Supervisor
) -> None:
    key = env.make_key()
    endless = queue(env, key, "endless")
    wait_until(lambda: load_job(env.db, endless).progress > 0, timeout=120)
    completed = env.post("/video/complete", {"model": "endless", "queue_id": endless}, key)
    assert completed.status_code == 200, completed.text
    cancelled_at = time.monotonic()
    quick = queue(env, key, "quick")
    wait_until(lambda: load_job(env.db, quick).state == JobState.COMPLETED, timeout=90)
    # Setting up nothing again, the next job needs a step of the endless one at most.
    assert time.monotonic() - cancelled_at < 30
    assert load_job(env.db, endless).state == JobState.DELETED
    storage = storage_from_url(env.settings.resolved_storage_url)
    assert not storage.exists(output_key(endless)), "the partial output is discarded"


def test_a_job_past_its_models_time_limit_fails_refunded(env: Env, workers: Supervisor) -> None:
    account = env.make_account(10)
    key = env.make_key(account)
    limited = queue(env, key, "limited")
    job = wait_until(
        lambda: (j := load_job(env.db, limited)).state == JobState.FAILED and j, timeout=120
    )
    status, body = retrieve_error(job)
    assert status == 500
    assert body["credits_refunded"] is True
    assert f"time limit of {TIME_LIMIT_S} s" in body["details"]
    assert balance(env, account) == 10_000_000


def test_a_corrupt_weights_folder_leaves_its_job_queued_and_the_worker_says_why(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    worker = build_worker(env.settings)
    stop = threading.Event()
    loop = threading.Thread(target=worker.run_forever, args=(stop, 0.05))
    account = env.make_account(10)
    key = env.make_key(account)
    stranded = queue(env, key, "broken")
    quick = queue(env, key, "quick")
    with caplog.at_level(logging.ERROR, logger="videoqueue.jobs.worker"):
        loop.start()
        try:
            wait_until(lambda: load_job(env.db, quick).state == JobState.COMPLETED, timeout=120)
            wait_until(
                lambda: sum("FAILED to set up" in r.message for r in caplog.records) >= 2,
                timeout=SETUP_RETRY_S + 60,
            )
        finally:
            stop.set()
            loop.join(60)
            worker.close()
            worker.db.dispose()
    job = load_job(env.db, stranded)
    assert (job.state, job.attempts, job.lease_owner) == (JobState.QUEUED, 0, None)
    state = worker.engine_states()["wan-broken"]
    assert state.startswith("failed: ") and "broken" in state
    assert any("wan-broken" in r.message for r in caplog.records)
    retrieved = env.post("/video/retrieve", {"model": "broken", "queue_id": stranded}, key)
    assert (retrieved.status_code, retrieved.json()["status"]) == (200, "PROCESSING")
    charged = price_micros(env, "broken") + price_micros(env, "quick")
    assert balance(env, account) == 10_000_000 - charged, "both charged, nothing refunded"
