"""Every model of the catalogue, through the real `/video/queue`: one valid request passes, and
each constraint the model has is broken once and answered with Venice's exact status and body.

The cases come from `tests.catalog.cases`, which builds them from each catalogue entry; the
expected bodies are written there from Venice's conventions, not by the server's code.
"""

from __future__ import annotations

import pytest

from tests.catalog.cases import Case, entry_and_family, model_ids, queue_cases
from tests.conftest import Env

CASES = [
    pytest.param(model_id, case, id=f"{model_id}:{case.name}")
    for model_id in model_ids()
    for case in queue_cases(*entry_and_family(model_id))
]


@pytest.mark.parametrize(("model_id", "case"), CASES)
def test_queue_answers_like_venice(
    table_env: Env, table_key: str, model_id: str, case: Case
) -> None:
    response = table_env.post("/video/queue", case.body, table_key)
    assert response.status_code == case.status, response.text
    if case.status == 200:
        assert set(response.json()) <= {"model", "queue_id", "download_url"}
        assert response.json()["model"] == model_id
    else:
        assert response.json() == case.expected
