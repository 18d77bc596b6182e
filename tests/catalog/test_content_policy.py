"""The operator's prompt rules: a match is answered 422 in Venice's ContentViolationError shape,
before any media is read and before any charge."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from tests.conftest import Env
from videoqueue.billing.models import Account
from videoqueue.catalog.content_policy import ContentRule
from videoqueue.jobs.models import Job
from videoqueue.settings import Settings

T2V = "wan-2.6-text-to-video"
I2V = "wan-2.6-image-to-video"
MESSAGE = "Your prompt violates the content policy of Venice.ai or the model provider"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    rules = [
        ContentRule(pattern=r"\bgore\b", suggested_prompt="A calm meadow at dawn"),
        ContentRule(pattern="forbidden thing"),
    ]
    return settings.model_copy(update={"content_policy_rules": rules})


def _charged_and_jobs(env: Env, account_id: str) -> tuple[int, int]:
    with env.db.transaction() as session:
        account = session.get(Account, account_id)
        assert account is not None
        jobs = session.scalar(
            select(func.count()).select_from(Job).where(Job.account_id == account_id)
        )
        return account.balance_micros, jobs or 0


def test_a_matching_prompt_is_refused_with_the_suggestion_before_any_charge(env: Env) -> None:
    account = env.make_account(10)
    key = env.make_key(account)
    response = env.post(
        "/video/queue", {"model": T2V, "prompt": "A scene full of GORE", "duration": "5s"}, key
    )
    assert response.status_code == 422
    assert response.json() == {"error": MESSAGE, "suggested_prompt": "A calm meadow at dawn"}
    assert _charged_and_jobs(env, account) == (10_000_000, 0)


def test_a_rule_without_a_suggestion_answers_the_error_alone(env: Env) -> None:
    response = env.post(
        "/video/queue",
        {"model": T2V, "prompt": "the forbidden thing", "duration": "5s"},
        env.make_key(),
    )
    assert response.status_code == 422
    assert response.json() == {"error": MESSAGE}


def test_the_prompt_is_checked_before_the_media_is_read(env: Env) -> None:
    response = env.post(
        "/video/queue",
        {
            "model": I2V,
            "prompt": "gore",
            "duration": "5s",
            "image_url": "http://127.0.0.1:9/never-fetched.png",
        },
        env.make_key(),
    )
    assert response.status_code == 422


def test_other_prompts_pass(env: Env) -> None:
    response = env.post(
        "/video/queue",
        {"model": T2V, "prompt": "a gorge at sunset", "duration": "5s"},
        env.make_key(),
    )
    assert response.status_code == 200, response.text


def test_a_rule_that_is_not_a_regular_expression_fails_at_start_up() -> None:
    with pytest.raises(ValidationError, match="not a regular expression"):
        Settings.model_validate({"content_policy_rules": [{"pattern": "(unclosed"}]})
