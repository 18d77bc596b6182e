"""`seed`, a videoqueue field beside Venice's: the client's seed reaches the engine (another
seed, another video), a bad one is refused with Venice's issue shape, and without one the
seed is derived from the request."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Env, load_job

MODEL = "wan-2.5-preview-text-to-video"
BODY = {"model": MODEL, "prompt": "a kite", "duration": "5s", "resolution": "480p"}


def _seed_of(env: Env, key: str, body: dict[str, Any]) -> int:
    response = env.post("/video/queue", body, key)
    assert response.status_code == 200, response.text
    return load_job(env.db, response.json()["queue_id"]).job_spec.seed


def test_the_clients_seed_is_the_jobs_and_without_one_the_request_decides(env: Env) -> None:
    key = env.make_key()
    assert _seed_of(env, key, {**BODY, "seed": 7}) == 7
    assert _seed_of(env, key, {**BODY, "seed": 2**32 - 1}) == 2**32 - 1
    derived = _seed_of(env, key, BODY)
    assert _seed_of(env, key, BODY) == derived
    assert _seed_of(env, key, {**BODY, "prompt": "a boat"}) != derived


@pytest.mark.parametrize(
    ("seed", "code", "message"),
    [
        ("7", "invalid_type", "Expected number, received string"),
        (True, "invalid_type", "Expected number, received boolean"),
        (1.5, "invalid_type", "Expected integer, received float"),
        (-1, "too_small", "Number must be greater than or equal to 0"),
        (2**32, "too_big", "Number must be less than or equal to 4294967295"),
    ],
)
def test_a_bad_seed_is_refused_with_its_issue(
    env: Env, seed: object, code: str, message: str
) -> None:
    response = env.post("/video/queue", {**BODY, "seed": seed}, env.make_key())
    assert response.status_code == 400, response.text
    [issue] = response.json()["issues"]
    assert (issue["code"], issue["path"], issue["message"]) == (code, ["seed"], message)
