"""Property-based contract test: requests generated from Venice's OpenAPI (schemathesis) against
the real app in-process. Whatever arrives, `/video/queue`, `/video/quote` and `/video/retrieve`
answer no 5xx, only documented status codes, and bodies valid against the documented schemas.

The spec is `tests/data/venice-openapi-video.json`, the needed part of Venice's file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.catalog.cases import (
    entry_and_family,
    model_ids,
    valid_queue_body,
    valid_quote_body,
)
from tests.conftest import Env

OPENAPI = Path(__file__).parents[1] / "data" / "venice-openapi-video.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

schema = schemathesis.openapi.from_dict(json.loads(OPENAPI.read_text())).include(
    path_regex=r"^/video/(queue|quote|retrieve)$"
)

# Bodies Venice would shape: most generated bodies name no model this server knows, so a share
# of them is steered to catalogue models, some of those on top of a valid request, and a share
# of retrieve bodies to a job that exists.
QUEUED_JOB: dict[str, str] = {}
SHAPED_FIELDS = (
    "prompt",
    "negative_prompt",
    "duration",
    "aspect_ratio",
    "resolution",
    "audio",
    "upscale_factor",
    "consents",
    "reference_video_total_duration",
)


def _on_valid_request(path: str, model_id: str, generated: dict[str, Any]) -> dict[str, Any]:
    entry, _ = entry_and_family(model_id)
    base = valid_queue_body(entry) if path == "/video/queue" else valid_quote_body(entry)
    return {**base, **{k: v for k, v in generated.items() if k in SHAPED_FIELDS}}


@schema.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    path = context.operation.path
    if not isinstance(body, dict) or path not in ("/video/queue", "/video/quote"):
        if isinstance(body, dict) and QUEUED_JOB:
            return st.one_of(st.just(body), st.just({**body, **QUEUED_JOB}))
        return st.just(body)
    models = st.sampled_from(model_ids())
    return st.one_of(
        st.just(body),
        models.map(lambda model_id: {**body, "model": model_id}),
        models.map(lambda model_id: _on_valid_request(path, model_id, body)),
    )


@pytest.fixture(scope="module")
def key(table_env: Env) -> str:
    secret = table_env.make_key(balance_usd=1_000_000)
    job = valid_queue_body(entry_and_family("wan-2-7-text-to-video")[0])
    response = table_env.post("/video/queue", job, secret)
    QUEUED_JOB.update(model=job["model"], queue_id=response.json()["queue_id"])
    return secret


def _send(env: Env, case: Any, key: str) -> Any:
    """Send the case through the app's own test client (one app, one database, for all)."""
    sent = case.as_transport_kwargs(
        base_url="http://testserver/api/v1", headers={"Authorization": f"Bearer {key}"}
    )
    body = sent.get("data")
    if "json" in sent:
        body = json.dumps(sent["json"]).encode()
    return env.client.request(
        sent["method"],
        sent["url"],
        headers=sent.get("headers"),
        params=sent.get("params"),
        content=body,
    )


@schema.parametrize()
@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_video_routes_keep_venices_contract(case: Any, table_env: Env, key: str) -> None:
    response = _send(table_env, case, key)
    case.validate_response(response, checks=CHECKS)
