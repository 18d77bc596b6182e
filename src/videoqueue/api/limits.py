"""Rate limits on the video routes: a dependency that counts each request (a queue's it
leaves to the route), and a middleware that writes Venice's `x-ratelimit-*` headers on the
response and counts it against the failed-request budget when it is a 4xx.

A queue request's key is looked up and the request counted in the transaction that charges
it and creates its job (one write transaction in all), or, when it carries media, in one of
its own before any media is fetched; either way a 429 never follows a created job, and comes
before any other error but an unknown key's 401.
The x402 routes are limited per client address instead (`address_limited`), before sign-in.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Depends
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import Message, Scope

from videoqueue.api.auth import (
    Caller,
    Credentials,
    KeySecret,
    caller_credentials,
    resolve,
    resolve_in,
)
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
from videoqueue.db.commit_hooks import after_commit
from videoqueue.errors import VideoqueueError
from videoqueue.jobs.service import Payer, PayingCaller

log = logging.getLogger(__name__)

STATE_KEY = "rate_limit"

T = TypeVar("T")


class RateCount:
    """A request's count against its caller's limit on a route and model, made once: in the
    transaction that does the request's work where it has one (`admit`), else alone
    (`admit_caller`). `status` is what the headers say once a count has committed."""

    def __init__(
        self,
        ctx: AppContext,
        credentials: Credentials,
        route: str,
        model: str,
        model_privacy: str | None = None,
    ) -> None:
        self._ctx = ctx
        self._credentials = credentials
        self._route = route
        self._model = model
        self._model_privacy = model_privacy
        self.caller: Caller | None = None
        """Whom the request is counted against, once known."""
        self.status: RateStatus | None = None

    def _admit(self, session: Session) -> RateStatus:
        assert self.caller is not None, "a request is counted once its caller is known"
        return admit(
            session,
            caller_id=self.caller.key_id or self.caller.account_id,
            route=self._route,
            model=self._model,
            policy=self._ctx.rate_policies.route(self._route),
            clock=self._ctx.clock,
        )

    def _allow_model(self, caller: Caller) -> Caller:
        """The caller, unless its key's `modelPrivacy` refuses the model (403)."""
        if self._model_privacy is not None:
            allow_model(caller.model_privacy, self._model_privacy)
        return caller

    def payer(self) -> Payer:
        """Who pays, looked up in a read of its own (the count comes later); 401 for an
        unknown key, 403 for a model its key may not use."""
        if self.caller is None:
            self.caller = resolve(self._ctx, self._credentials)
        return self._allow_model(self.caller).payer

    def admit(self, session: Session) -> Payer:
        """Count in the transaction that does the request's work, looking the caller up there
        unless `payer` has; a refusal raises, so that transaction rolls back and the request
        is counted alone when it is answered (`admit_caller`)."""
        if self.caller is None:
            self.caller = resolve_in(self._ctx, session, self._credentials)
        payer = self._allow_model(self.caller).payer
        if self.status is not None:
            return payer
        status = self._admit(session)
        if status.refused is not None:
            raise status.error()

        def committed() -> None:
            self.status = status

        after_commit(session, "rate_count", committed)
        return payer

    def admit_caller(self) -> Caller:
        """The caller, looked up and counted in one write transaction of its own unless the
        request's work counted it: 401 for an unknown key (nothing counted), else the
        committed count, and 429 if it refused."""
        if self.status is None:
            with self._ctx.db.transaction() as session:
                # Looked up again where the work's transaction rolled back: the key's use is
                # noted here instead.
                self.caller = resolve_in(self._ctx, session, self._credentials)
                self.status = self._admit(session)
        if self.status.refused is not None:
            raise self.status.error()
        assert self.caller is not None
        return self.caller

    def before_refusal(self) -> None:
        """What answers before the request's own refusal: 401 for an unknown key, then 429
        past the limit (the request counted alone), then 403 for a model its key may not use."""
        self._allow_model(self.admit_caller())

    def then(self, work: Callable[[Caller], T]) -> T:
        """`work(caller)` once the caller is admitted (`admit_caller`), in the same thread
        call: a route that reads the database after its count needs one hop, not two."""
        return work(self.admit_caller())

    def around(self, work: Callable[[PayingCaller], T]) -> T:
        """`work(self)`, the request's own refusal answered after `before_refusal`'s, as if
        the request had been counted before anything else."""
        try:
            done = work(self)
        except Exception:
            self.before_refusal()
            raise
        self.admit_caller()
        return done

    @property
    def admitted(self) -> Caller:
        """The caller of a request `around` has admitted."""
        assert self.caller is not None, "the request is admitted"
        return self.caller


async def json_model(request: Request) -> object:
    """The `model` a JSON body names (Venice's video routes)."""
    return (await json_object(request)).get("model")


async def _rate_count(
    request: Request,
    credentials: Credentials,
    route: str,
    named_model: Callable[[Request], Awaitable[object]],
) -> RateCount:
    """The request's count on `route` and the model `named_model` reads (if the catalogue
    has it), not made yet."""
    ctx = context(request)
    now = ctx.clock.now()
    try:
        named = await named_model(request)
    except Exception:
        if isinstance(credentials, KeySecret):  # an unknown key's 401 comes first
            await run_in_threadpool(resolve, ctx, credentials)
        raise
    entry = ctx.catalog.find(named, now) if isinstance(named, str) else None
    # Unknown model names share one bucket, so made-up names cannot grow the table.
    model, privacy = (entry.id, entry.privacy) if entry is not None else ("", None)
    rate = RateCount(ctx, credentials, route, model, privacy)
    request.state.rate_limit = rate
    if entry is not None:
        note_model(request, entry, now)
    return rate


def admission(
    route: str,
    *,
    authenticate: Callable[[Request], Awaitable[Credentials]] = caller_credentials,
    named_model: Callable[[Request], Awaitable[object]] = json_model,
) -> Callable[..., Awaitable[RateCount]]:
    """A dependency giving the request's count on `route` with its caller still to look up
    and admit: the route does so with its own database work, in one thread call (`then`,
    or the jobs service's `admit` under `around`), or alone (`admit_caller`) before refusing
    the request itself. A queue's caller is looked up in the transaction that charges it."""

    # The credentials are read here, not as a dependency of this one: FastAPI's solving of a
    # nested dependency costs the event loop more than the reading does.
    async def deferred(request: Request) -> RateCount:
        credentials = await authenticate(request)
        return await _rate_count(request, credentials, route, named_model)

    return deferred


def rate_limited(
    route: str,
    *,
    authenticate: Callable[[Request], Awaitable[Credentials]] = caller_credentials,
    named_model: Callable[[Request], Awaitable[object]] = json_model,
) -> Callable[..., Awaitable[Caller]]:
    """A dependency giving the caller (`authenticate`) once the request is within its limits
    on the model `named_model` reads, else 429: `admission`'s count, made here, before the
    route runs, in the transaction that looks up the caller's key."""
    counted = admission(route, authenticate=authenticate, named_model=named_model)

    async def admitted_caller(request: Request) -> Caller:
        rate = await counted(request)
        return await run_in_threadpool(rate.admit_caller)

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
        rate = scope.get("state", {}).get(STATE_KEY)
        status = rate.status if isinstance(rate, RateCount) else None
        if status is None:
            return
        ctx: AppContext = scope["app"].state.context
        headers = MutableHeaders(scope=message)
        for name, value in rate_limit_headers(status, ctx.clock.now()).items():
            headers[name] = value
        code = int(message["status"])
        if 400 <= code < 500 and code != 429:
            await run_in_threadpool(_record_failure, ctx, status)


QueueAdmission = Annotated[RateCount, Depends(admission("queue"))]
CompleteCaller = Annotated[Caller, Depends(rate_limited("complete"))]
RetrieveAdmission = Annotated[RateCount, Depends(admission("retrieve"))]
CompleteAdmission = Annotated[RateCount, Depends(admission("complete"))]
