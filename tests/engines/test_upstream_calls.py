"""How the `venice` engine reads an upstream's answers: which are waited out (and for how
long), which fail our job with which error, and which release an upstream job."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from videoqueue.engines.base import EngineError, ProviderContentPolicy
from videoqueue.engines.upstream_calls import (
    Retry,
    RetryPolicy,
    raise_for_answer,
    retry_after_s,
    retrying,
    send_release,
)

CONSENT_409 = {
    "error": {"code": "needs_consent", "message": "Seedance consent is required for this request."},
    "consent_flow": "seedance",
    "face_media_roles": ["image"],
    "consent": {"consent_version": "v2.0", "policy_text": "…"},
    "docs_url": "https://docs.venice.ai/guides/media/seedance-face-consent",
}


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, headers=headers)


def failing(times: int, error: Exception) -> Any:
    calls = {"n": 0}

    def call() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise error
        return "done"

    return call


def test_a_retry_after_is_waited_out_before_the_next_try() -> None:
    waits: list[float] = []
    result = retrying(
        failing(2, Retry("429", after_s=7)), RetryPolicy(give_up_after_s=60), waits.append, "x"
    )
    assert (result, waits) == ("done", [7, 7])


def test_without_retry_after_the_pause_doubles() -> None:
    waits: list[float] = []
    error = httpx.ConnectError("refused")
    retrying(failing(3, error), RetryPolicy(give_up_after_s=60), waits.append, "x")
    assert waits == [1, 2, 4]


def test_the_job_fails_once_the_next_pause_would_pass_the_budget() -> None:
    waits: list[float] = []
    with pytest.raises(EngineError, match="did not answer retrieve: 503") as caught:
        retrying(
            failing(99, Retry("503")), RetryPolicy(give_up_after_s=3), waits.append, "retrieve"
        )
    assert waits == [1, 2]
    assert caught.value.refundable


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_s(answer(429, headers={"Retry-After": "12"})) == 12
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=100), usegmt=True)
    seconds = retry_after_s(answer(429, headers={"Retry-After": later}))
    assert seconds is not None and 90 < seconds <= 100
    assert retry_after_s(answer(429, headers={"Retry-After": "soon"})) is None
    assert retry_after_s(answer(429)) is None


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_busy_or_failing_servers_are_tried_again(status: int) -> None:
    with pytest.raises(Retry) as caught:
        raise_for_answer(answer(status, {"error": "busy"}, {"Retry-After": "3"}), "queue")
    assert caught.value.after_s == 3


def test_a_provider_content_policy_refusal_keeps_the_recommended_model() -> None:
    body = {
        "error": {
            "message": "The selected model provider rejected this request …",
            "type": "provider_content_policy",
            "recommended_model": "wan-2-7-text-to-video",
            "credits_refunded": True,
        }
    }
    with pytest.raises(ProviderContentPolicy) as caught:
        raise_for_answer(answer(422, body), "retrieve")
    assert caught.value.recommended_model == "wan-2-7-text-to-video"
    assert caught.value.refundable


def test_a_prompt_refused_at_queue_time_is_a_content_policy_failure() -> None:
    with pytest.raises(ProviderContentPolicy, match="violates the content policy"):
        raise_for_answer(answer(422, {"error": "Your prompt violates the content policy"}), "q")


def test_an_upstream_job_that_failed_is_not_tried_again() -> None:
    body = {"error": "Inference processing failed", "details": "oom", "credits_refunded": True}
    with pytest.raises(EngineError, match=r"the upstream job failed: .*oom") as caught:
        raise_for_answer(answer(500, body), "retrieve")
    assert caught.value.refundable


def test_an_upstream_402_fails_refunded_and_is_logged_for_the_operator(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(EngineError) as caught:
        raise_for_answer(answer(402, {"error": "Insufficient balance"}), "queue")
    assert caught.value.refundable
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "UPSTREAM CREDIT" in record.getMessage()
    assert "Insufficient balance" in record.getMessage()


def test_an_upstream_consent_409_carries_its_message_and_link() -> None:
    with pytest.raises(EngineError) as caught:
        raise_for_answer(answer(409, CONSENT_409), "queue")
    assert caught.value.message == (
        "the upstream provider asks for consent: Seedance consent is required for this "
        "request. (https://docs.venice.ai/guides/media/seedance-face-consent)"
    )
    assert caught.value.refundable


def test_a_refused_request_fails_with_the_upstream_status_and_message() -> None:
    with pytest.raises(EngineError, match=r"refused the job \(401\): Authentication failed"):
        raise_for_answer(answer(401, {"error": "Authentication failed"}), "queue")


def sending(*responses: httpx.Response) -> tuple[Any, list[int]]:
    """A call answering `responses` in turn, and the statuses it has answered."""
    left, sent = list(responses), []

    def call() -> httpx.Response:
        response = left.pop(0)
        sent.append(response.status_code)
        return response

    return call, sent


def test_a_release_waits_out_a_busy_upstream_and_takes_a_404_as_released() -> None:
    call, sent = sending(answer(503, headers={"retry-after": "0"}), answer(404))
    send_release(call, RetryPolicy(give_up_after_s=60), "complete")
    assert sent == [503, 404]


def test_a_release_refused_for_good_is_logged_and_not_sent_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call, sent = sending(answer(400, {"error": "no such thing"}))
    send_release(call, RetryPolicy(give_up_after_s=60), "complete")
    assert sent == [400]
    assert "upstream complete refused for good" in caplog.text


def test_a_release_to_an_upstream_that_stays_away_fails_to_be_tried_later() -> None:
    call, sent = sending(answer(503, headers={"retry-after": "5"}))
    with pytest.raises(EngineError, match="did not answer delete"):
        send_release(call, RetryPolicy(give_up_after_s=1), "delete")
    assert sent == [503]


def test_a_release_holds_its_worker_no_longer_than_its_own_patience() -> None:
    # The job's calls may keep trying for minutes; a release is tried again at the next sweep.
    call, sent = sending(answer(503, headers={"retry-after": "20"}))
    with pytest.raises(EngineError, match="did not answer complete"):
        send_release(call, RetryPolicy(give_up_after_s=300), "complete")
    assert sent == [503]
