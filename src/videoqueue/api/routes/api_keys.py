"""`/api_keys`, `/api_keys/{id}`, `/api_keys/rate_limits`: an account's keys, in Venice's shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from videoqueue.api.auth import AdminCaller, Caller, KeyCaller
from videoqueue.api.body import json_object
from videoqueue.api.context import AppContext, context
from videoqueue.api.key_request import NewKey, parse_new_key
from videoqueue.auth.keys import create_key, list_keys, revoke_key
from videoqueue.auth.models import ApiKey
from videoqueue.billing.ledger import key_spend_micros, period_start
from videoqueue.billing.models import Account, usd_text
from videoqueue.catalog import issues as iss
from videoqueue.catalog.issues import InvalidParameters
from videoqueue.catalog.pricing import micros_to_usd
from videoqueue.clock import iso_z
from videoqueue.errors import VideoqueueError

router = APIRouter(tags=["API Keys"])

TRAILING_USAGE = timedelta(days=7)


class ApiKeyNotFound(VideoqueueError):
    """API key not found"""

    status = 404


def _optional_time(moment: datetime | None) -> str | None:
    return iso_z(moment) if moment is not None else None


def _limit_usd(key: ApiKey) -> float | None:
    return micros_to_usd(key.usd_limit_micros) if key.usd_limit_micros is not None else None


def _key_details(session: Session, key: ApiKey, now: datetime) -> dict[str, Any]:
    trailing = key_spend_micros(session, key.id, now - TRAILING_USAGE)
    details: dict[str, Any] = {
        "apiKeyType": key.kind.value,
        "consumptionLimits": {"usd": _limit_usd(key), "diem": None},
        "limitPeriod": key.limit_period.value,
        "modelPrivacy": key.model_privacy.value,
        "createdAt": iso_z(key.created_at),
        "description": key.name,
        "expiresAt": _optional_time(key.expires_at),
        "id": key.id,
        "last6Chars": key.last_chars,
        "lastUsedAt": _optional_time(key.last_used_at),
        "usage": {
            "trailingSevenDays": {"usd": usd_text(trailing, 4), "vcu": "0.0000", "diem": "0.0000"}
        },
    }
    if key.usd_limit_micros is not None:
        spent = key_spend_micros(session, key.id, period_start(key.limit_period, now))
        details["currentPeriodUsage"] = {"usd": usd_text(spent, 4), "diem": "0.0000"}
    return details


def _list(ctx: AppContext, caller: Caller) -> dict[str, Any]:
    now = ctx.clock.now()
    with ctx.db.transaction() as session:
        keys = list_keys(session, account_id=caller.account_id)
        return {"object": "list", "data": [_key_details(session, k, now) for k in keys]}


@router.get("/api_keys")
async def get_api_keys(request: Request, caller: AdminCaller) -> JSONResponse:
    """The account's API keys that are not revoked, with their limits and recent spend."""
    return JSONResponse(await run_in_threadpool(_list, context(request), caller))


def _create(ctx: AppContext, caller: Caller, new: NewKey) -> dict[str, Any]:
    with ctx.db.transaction() as session:
        key, secret = create_key(
            session,
            account_id=caller.account_id,
            kind=new.kind,
            clock=ctx.clock,
            name=new.description,
            expires_at=new.expires_at,
            usd_limit_micros=new.usd_limit_micros,
            limit_period=new.limit_period,
            model_privacy=new.model_privacy,
        )
        return {
            "success": True,
            "data": {
                "apiKey": secret,
                "apiKeyType": key.kind.value,
                "consumptionLimit": {"usd": _limit_usd(key), "diem": None},
                "limitPeriod": key.limit_period.value,
                "modelPrivacy": key.model_privacy.value,
                "description": key.name,
                "expiresAt": _optional_time(key.expires_at),
                "id": key.id,
            },
        }


@router.post("/api_keys")
async def post_api_key(request: Request, caller: AdminCaller) -> JSONResponse:
    """Create a key for the account. The secret `apiKey` is shown in this answer only."""
    ctx = context(request)
    new = parse_new_key(await json_object(request), ctx.clock.now())
    return JSONResponse(await run_in_threadpool(_create, ctx, caller, new))


@router.get("/api_keys/rate_limits")
async def get_rate_limits(request: Request, caller: KeyCaller) -> JSONResponse:
    """The calling key's balance, expiry and per-model request limits."""
    return JSONResponse(await run_in_threadpool(_rate_limits, context(request), caller))


def _next_epoch(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        days=1
    )


def _rate_limits(ctx: AppContext, caller: Caller) -> dict[str, Any]:
    now = ctx.clock.now()
    with ctx.db.transaction() as session:
        account = session.get(Account, caller.account_id)
        key = session.get(ApiKey, caller.key_id)
        assert account is not None and key is not None
        within_limit = (
            key.usd_limit_micros is None
            or key_spend_micros(session, key.id, period_start(key.limit_period, now))
            < key.usd_limit_micros
        )
    per_minute = ctx.rate_policies.queue.requests_per_minute
    return {
        "data": {
            "accessPermitted": (account.unlimited or account.balance_micros > 0) and within_limit,
            "apiTier": {
                "id": "unlimited" if account.unlimited else "paid",
                "isCharged": not account.unlimited,
            },
            "balances": {"USD": micros_to_usd(account.balance_micros), "DIEM": 0},
            "keyExpiration": _optional_time(key.expires_at),
            "nextEpochBegins": iso_z(_next_epoch(now)),
            "rateLimits": [
                {"apiModelId": model_id, "rateLimits": [{"amount": per_minute, "type": "RPM"}]}
                for model_id in sorted(ctx.catalog.models)
            ],
        }
    }


def _details(ctx: AppContext, caller: Caller, key_id: str) -> dict[str, Any]:
    with ctx.db.transaction() as session:
        key = session.get(ApiKey, key_id)
        if key is None or key.account_id != caller.account_id:
            raise ApiKeyNotFound()
        return {"data": _key_details(session, key, ctx.clock.now())}


@router.get("/api_keys/{key_id}")
async def get_api_key(key_id: str, request: Request, caller: AdminCaller) -> JSONResponse:
    """One of the account's keys, with its limits and recent spend."""
    return JSONResponse(await run_in_threadpool(_details, context(request), caller, key_id))


def _revoke(ctx: AppContext, caller: Caller, key_id: str) -> dict[str, Any]:
    with ctx.db.transaction() as session:
        if not revoke_key(session, key_id, ctx.clock, account_id=caller.account_id):
            raise ApiKeyNotFound()
    return {"success": True}


@router.delete("/api_keys")
async def delete_api_key_by_query(request: Request, caller: AdminCaller) -> JSONResponse:
    """Revoke the key named by `?id=` (Venice's form); it stops authenticating at once."""
    key_id = request.query_params.get("id")
    if not key_id:
        raise InvalidParameters([iss.required(("id",), "string")])
    return JSONResponse(await run_in_threadpool(_revoke, context(request), caller, key_id))


@router.delete("/api_keys/{key_id}")
async def delete_api_key(key_id: str, request: Request, caller: AdminCaller) -> JSONResponse:
    """Revoke one of the account's keys; it stops authenticating at once."""
    return JSONResponse(await run_in_threadpool(_revoke, context(request), caller, key_id))
