"""Rate limits on the video routes: a dependency that admits (or refuses) each request before
the route runs, and a middleware that writes Venice's `x-ratelimit-*` headers on the
response and counts it against the failed-request budget when it is a 4xx.

A queue request is admitted before its job exists, so a 429 never follows a created job.
The x402 routes are limited per client address instead (`address_limited`), before sign-in.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import Message, Scope

from videoqueue.api.auth import Caller, require_caller
from videoqueue.api.body import json_object
from videoqueue.api.context import AppContext, context
from videoqueue.api.model_access import note_model
from videoqueue.api.response_start import ResponseStartHook
from videoqueue.auth.keys import allow_model
from videoqueue.auth.rate_limits import (
    RateStatus,
    TooManyRequestsFromAddress,
    admit,
    admit_address,
    record_failure,
)
from videoqueue.errors import VideoqueueError

log = logging.getLogger(__name__)

STATE_KEY = "rate_limit"


def _admit(ctx: AppContext, caller: Caller, route: str, model: str) -> RateStatus:
    with ctx.db.transaction() as session:
        return admit(
            session,
            caller_id=caller.key_id or caller.account_id,
            route=route,
            model=model,
            policy=ctx.rate_policies.route(route),
            clock=ctx.clock,
        )


async def json_model(request: Request) -> object:
    """The `model` a JSON body names (Venice's video routes)."""
    return (await json_object(request)).get("model")


def rate_limited(
    route: str,
    *,
    authenticate: Callable[[Request], Awaitable[Caller]] = require_caller,
    named_model: Callable[[Request], Awaitable[object]] = json_model,
) -> Callable[..., Awaitable[Caller]]:
    """A dependency giving the caller (`authenticate`) once the request is within its limits
    on the model `named_model` reads, else 429; a queue for a model the key's
    `modelPrivacy` refuses is then 403."""

    async def admitted_caller(request: Request, caller: Caller = Depends(authenticate)) -> Caller:
        ctx = context(request)
        now = ctx.clock.now()
        named = await named_model(request)
        entry = ctx.catalog.find(named, now) if isinstance(named, str) else None
        # Unknown model names share one bucket, so made-up names cannot grow the table.
        model = entry.id if entry is not None else ""
        status = await run_in_threadpool(_admit, ctx, caller, route, model)
        request.state.rate_limit = status
        if entry is not None:
            note_model(request, entry, now)
        if status.refused is not None:
            raise status.error()
        if entry is not None and route == "queue":
            allow_model(caller.model_privacy, entry.privacy)
        return caller

    return admitted_caller


def _admit_address(ctx: AppContext, route: str, address: str) -> int | None:
    with ctx.db.transaction() as session:
        return admit_address(
            session,
            route=route,
            address=address,
            per_minute=ctx.rate_policies.per_address[route],
            clock=ctx.clock,
        )


def address_limited(
    route: str, refusal: Callable[[int], VideoqueueError] = TooManyRequestsFromAddress
) -> Callable[..., Awaitable[None]]:
    """A dependency admitting a request within its client address's limit on `route` (an
    x402 route), else raising `refusal(retry_after_seconds)`; it runs before any sign-in."""

    async def within_address_limit(request: Request) -> None:
        address = request.client.host if request.client else "unknown"
        retry_after = await run_in_threadpool(_admit_address, context(request), route, address)
        if retry_after is not None:
            raise refusal(retry_after)

    return within_address_limit


def _millis(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def rate_limit_headers(status: RateStatus, now: datetime) -> dict[str, str]:
    """Spec §3.3's model-limit and error-budget headers (resets in Unix milliseconds)."""
    headers = {
        "x-ratelimit-limit-requests": str(status.policy.requests_per_minute),
        "x-ratelimit-remaining-requests": str(status.remaining),
        "x-ratelimit-reset-requests": _millis(status.resets_at),
        "x-ratelimit-type": "api_key",
        "x-ratelimit-remaining": str(status.failures_remaining),
        "x-ratelimit-resets": _millis(status.failures_reset_at),
    }
    if status.refused is not None:
        headers["retry-after"] = str(status.retry_after_seconds(now))
    return headers


def _record_failure(ctx: AppContext, status: RateStatus) -> None:
    try:
        with ctx.db.transaction() as session:
            record_failure(session, status, ctx.clock)
    except Exception:
        log.exception("could not count a failed request against its budget")


class RateLimitHeaders(ResponseStartHook):
    """Adds the headers of a request admitted by `rate_limited`, and counts its failure."""

    async def _on_start(self, scope: Scope, message: Message) -> None:
        status = scope.get("state", {}).get(STATE_KEY)
        if not isinstance(status, RateStatus):
            return
        ctx: AppContext = scope["app"].state.context
        headers = MutableHeaders(scope=message)
        for name, value in rate_limit_headers(status, ctx.clock.now()).items():
            headers[name] = value
        code = int(message["status"])
        if 400 <= code < 500 and code != 429:
            await run_in_threadpool(_record_failure, ctx, status)


QueueCaller = Annotated[Caller, Depends(rate_limited("queue"))]
RetrieveCaller = Annotated[Caller, Depends(rate_limited("retrieve"))]
CompleteCaller = Annotated[Caller, Depends(rate_limited("complete"))]
