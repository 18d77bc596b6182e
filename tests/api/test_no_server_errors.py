"""Whatever a client sends to any route, the answer is a JSON 4xx or a success: never a 5xx."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Env, build_env
from videoqueue.settings import Settings

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        "model",
        "prompt",
        "duration",
        "resolution",
        "aspect_ratio",
        "audio",
        "image_url",
        "video_url",
        "reference_image_urls",
        "elements",
        "consents",
        "upscale_factor",
        "queue_id",
        "delete_media_on_completion",
        "input_height",
        "name",
        "apiKeyType",
        "description",
        "consumptionLimit",
        "expiresAt",
        "seconds",
        "size",
        "input_reference",
        "webhook_url",
    ]
)
MODELS = st.sampled_from(
    [
        "wan-2.5-preview-text-to-video",
        "topaz-video-upscale",
        "kling-o3-pro-reference-to-video",
        "seedance-2-0-image-to-video",
        "grok-imagine-text-to-video-private",
        "nope",
    ]
)
BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries({"model": MODELS}, optional={"prompt": JSON, "duration": JSON}).flatmap(
        lambda base: st.dictionaries(FIELDS, JSON, max_size=6).map(lambda extra: base | extra)
    ),
)
POST_ROUTES = [
    "/api/v1/video/queue",
    "/api/v1/video/quote",
    "/api/v1/video/retrieve",
    "/api/v1/video/complete",
    "/api/v1/api_keys",
    "/api/v1/x402/top-up",
    "/api/v1/webhooks/secret",
    "/v1/videos",
]
GET_ROUTES = [
    "/api/v1/models?type={}",
    "/api/v1/api_keys/rate_limits",
    "/api/v1/billing/balance",
    "/api/v1/billing/usage?limit={}",
    "/api/v1/billing/usage-history?startDate={}",
    "/api/v1/x402/balance/{}",
    "/api/v1/x402/transactions/{}?limit={}",
    "/api/v1/consents",
    "/v1/share/read/{}",
    "/api/v1/api_keys/{}",
    "/v1/videos/{}",
    "/api/v1/videos?limit={}&order={}&after={}",
    "/v1/videos/{}/content?variant={}",
    "/api/v1/webhooks/deliveries?queue_id={}&after={}&limit={}",
    "/api/v1/video/jobs/{}",
]
HEADER_VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@pytest.fixture(scope="module")
def fuzz_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    settings = Settings(
        data_dir=data_dir,
        queue_requests_per_minute=10**9,
        retrieve_requests_per_minute=10**9,
        failed_requests_budget=10**9,
        x402_top_up_requests_per_minute=10**9,
        x402_balance_requests_per_minute=10**9,
        x402_transactions_requests_per_minute=10**9,
        x402_pay_to="0x" + "12" * 20,
    )
    yield from build_env(settings)


def _assert_client_error_or_success(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and ("error" in body or "x402Version" in body), body


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(route=st.sampled_from(POST_ROUTES), body=BODIES, as_admin=st.booleans())
def test_any_json_body_gets_a_client_error_or_success(
    fuzz_env: Env, route: str, body: Any, as_admin: bool
) -> None:
    key = fuzz_env.admin_key if as_admin else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = fuzz_env.client.post(
        route, content=json.dumps(body), headers={**headers, "Content-Type": "application/json"}
    )
    _assert_client_error_or_success(response)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.sampled_from(GET_ROUTES),
    value=st.text(max_size=50),
    authorization=HEADER_VALUES,
    wallet_header=st.one_of(
        st.none(),
        HEADER_VALUES,
        JSON.map(lambda v: base64.b64encode(json.dumps(v).encode()).decode()),
    ),
    method=st.sampled_from(["GET", "DELETE"]),
)
def test_any_path_value_and_credentials_get_a_client_error_or_success(
    fuzz_env: Env,
    route: str,
    value: str,
    authorization: str,
    wallet_header: str | None,
    method: str,
) -> None:
    headers = {"Authorization": authorization}
    if wallet_header is not None:
        headers["SIGN-IN-WITH-X"] = wallet_header
    url = route.replace("{}", quote(value, safe=""))
    response = fuzz_env.client.request(method, url, headers=headers)
    _assert_client_error_or_success(response)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.binary(max_size=200),
    content_type=HEADER_VALUES,
    payment=st.one_of(st.none(), HEADER_VALUES),
)
def test_any_raw_body_and_payment_header_get_a_client_error(
    fuzz_env: Env, raw: bytes, content_type: str, payment: str | None
) -> None:
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {fuzz_env.admin_key}"}
    if payment is not None:
        headers["PAYMENT-SIGNATURE"] = payment
    for route in ("/api/v1/video/queue", "/api/v1/x402/top-up", "/v1/videos"):
        response = fuzz_env.client.post(route, content=raw, headers=headers)
        _assert_client_error_or_success(response)
