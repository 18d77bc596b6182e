"""Every model of the catalogue, through the real `/video/queue`: one valid request passes, and
each constraint the model has is broken once and answered with Venice's exact status and body.

The cases come from `tests.catalog.cases`, which builds them from each catalogue entry; the
expected bodies are written there from Venice's conventions, not by the server's code.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.catalog.cases import Case, entry_and_family, model_ids, queue_cases, table_settings
from tests.conftest import Env, build_env

CASES = [
    pytest.param(model_id, case, id=f"{model_id}:{case.name}")
    for model_id in model_ids()
    for case in queue_cases(*entry_and_family(model_id))
]


@pytest.fixture(scope="module")
def shared_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """One app for the whole table (each case is a single stateless request)."""
    data_dir: Path = tmp_path_factory.mktemp("validation") / "data"
    yield from build_env(table_settings(data_dir))


@pytest.fixture(scope="module")
def key(shared_env: Env) -> str:
    return shared_env.make_key(balance_usd=1_000_000)


@pytest.mark.parametrize(("model_id", "case"), CASES)
def test_queue_answers_like_venice(shared_env: Env, key: str, model_id: str, case: Case) -> None:
    response = shared_env.post("/video/queue", case.body, key)
    assert response.status_code == case.status, response.text
    if case.status == 200:
        assert set(response.json()) <= {"model", "queue_id", "download_url"}
        assert response.json()["model"] == model_id
    else:
        assert response.json() == case.expected
