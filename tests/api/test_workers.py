"""`GET /api/v1/workers`: the fleet as the operator sees it, behind an admin key."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Env
from tests.fleet_rows import register
from videoqueue.clock import SystemClock
from videoqueue.fleet.models import WorkerState


def test_the_fleet_lists_each_worker_with_its_engines_job_and_state(env: Env) -> None:
    now = SystemClock().now()
    register(env.db, "gpu-1:10:a", {"preview": "ready"}, heard_at=now, job_id="job-1")
    register(
        env.db, "gpu-1:11:b", {"preview": "setting up"}, heard_at=now, state=WorkerState.STOPPING
    )
    register(env.db, "gpu-2:12:c", {"upscale": "ready"}, heard_at=now - timedelta(minutes=5))
    response = env.client.get(
        "/api/v1/workers", headers={"Authorization": f"Bearer {env.admin_key}"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    listed = {w["id"]: w for w in body["data"]}
    assert {k: (w["state"], w["engines"], w["current_job_id"]) for k, w in listed.items()} == {
        "gpu-1:10:a": ("running", {"preview": "ready"}, "job-1"),
        "gpu-1:11:b": ("stopping", {"preview": "setting up"}, None),
        "gpu-2:12:c": ("lost", {"upscale": "ready"}, None),
    }
    first = listed["gpu-1:10:a"]
    assert (first["host"], first["pid"], first["device"]) == ("gpu-1", 4242, "cuda:0")
    assert first["last_heartbeat_at"].endswith("Z")
    assert listed["gpu-2:12:c"]["heartbeat_age_seconds"] >= 300


def test_the_fleet_is_for_admin_keys_only(env: Env) -> None:
    inference = env.client.get(
        "/api/v1/workers", headers={"Authorization": f"Bearer {env.make_key()}"}
    )
    assert (inference.status_code, inference.json()) == (401, {"error": "Admin API key required"})
    anonymous = env.client.get("/api/v1/workers")
    assert anonymous.status_code == 402
