"""`/billing/balance`, `/billing/usage`, `/billing/usage-history`: an account's money, read back
from its ledger in Venice's shapes (ADMIN keys only)."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from videoqueue.api.auth import AdminCaller, Caller
from videoqueue.api.context import AppContext, context
from videoqueue.billing.models import Account, LedgerEntry, LedgerKind
from videoqueue.billing.usage import usage_after, usage_page
from videoqueue.catalog import issues as iss
from videoqueue.catalog.issues import InvalidParameters, Issue
from videoqueue.catalog.pricing import micros_to_usd
from videoqueue.clock import iso_z

router = APIRouter(tags=["Billing"])

CURRENCIES = ("USD", "VCU", "DIEM", "BUNDLED_CREDITS")
CURSOR_KEYS = {"account", "currency", "size", "start", "end", "at", "id"}


def _balance(ctx: AppContext, caller: Caller) -> dict[str, Any]:
    with ctx.db.transaction() as session:
        account = session.get(Account, caller.account_id)
        assert account is not None
    can_consume = account.unlimited or account.balance_micros > 0
    return {
        "canConsume": can_consume,
        "consumptionCurrency": "USD" if can_consume else None,
        "balances": {"diem": None, "usd": micros_to_usd(account.balance_micros)},
        "diemEpochAllocation": 0,
    }


@router.get("/billing/balance")
async def get_balance(request: Request, caller: AdminCaller) -> JSONResponse:
    """The account's USD balance (the sum of its ledger) and whether it can be spent."""
    return JSONResponse(await run_in_threadpool(_balance, context(request), caller))


def usage_entry(entry: LedgerEntry) -> dict[str, Any]:
    """A CHARGE (negative) or REFUND (positive) row as one of Venice's usage entries."""
    amount = micros_to_usd(entry.amount_micros)
    refund = entry.kind == LedgerKind.REFUND
    return {
        "amount": amount,
        "currency": "USD",
        "inferenceDetails": None
        if entry.job_id is None
        else {
            "completionTokens": None,
            "inferenceExecutionTime": None,
            "promptTokens": None,
            "requestId": entry.job_id,
        },
        "notes": (f"Refund: {entry.note}" if entry.note else "Refund")
        if refund
        else "API Inference",
        "pricePerUnitUsd": abs(amount),
        "sku": f"{entry.model or 'video'}-video-unit",
        "timestamp": iso_z(entry.created_at),
        "units": 1,
    }


class _Query:
    """Query parameters checked one by one, their problems gathered as Zod issues."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.params = params
        self.issues: list[Issue] = []

    def time(self, name: str) -> datetime | None:
        value = self.params.get(name)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            self.issues.append(iss.custom((name,), "Invalid datetime"))
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.params.get(name)
        if value is None:
            return default
        if not value.isdigit() or not low <= int(value) <= high:
            self.issues.append(iss.custom((name,), f"Expected an integer from {low} to {high}"))
            return default
        return int(value)

    def choice(self, name: str, options: tuple[str, ...], default: str | None) -> str | None:
        value = self.params.get(name, default)
        if value is not None and value not in options:
            self.issues.append(iss.not_in_enum((name,), options, value))
            return default
        return value

    def check(self) -> None:
        if self.issues:
            raise InvalidParameters(self.issues)


def _usage(ctx: AppContext, caller: Caller, query: _Query) -> dict[str, Any]:
    currency = query.choice("currency", CURRENCIES, None)
    start, end = query.time("startDate"), query.time("endDate")
    limit = query.integer("limit", 200, 1, 500)
    page = query.integer("page", 1, 1, 1_000_000)
    newest_first = query.choice("sortOrder", ("asc", "desc"), "desc") == "desc"
    query.check()
    entries: list[LedgerEntry] = []
    total = 0
    if currency in (None, "USD"):
        with ctx.db.transaction() as session:
            entries, total = usage_page(
                session,
                caller.account_id,
                start=start,
                end=end,
                newest_first=newest_first,
                limit=limit,
                offset=(page - 1) * limit,
            )
    return {
        "data": [usage_entry(e) for e in entries],
        "pagination": {
            "limit": limit,
            "page": page,
            "total": total,
            "totalPages": math.ceil(total / limit),
        },
    }


@router.get("/billing/usage")
async def get_usage(request: Request, caller: AdminCaller) -> JSONResponse:
    """The account's charges and refunds, a page at a time (`page`, `limit`, `sortOrder`,
    `startDate`, `endDate`, `currency`), in the shape Venice's `/billing/usage` answered
    before it was retired in favour of `/billing/usage-history`."""
    query = _Query(request.query_params)
    return JSONResponse(await run_in_threadpool(_usage, context(request), caller, query))


def _encode_cursor(walk: dict[str, Any]) -> str:
    raw = json.dumps(walk, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, account_id: str) -> dict[str, Any]:
    """The walk a cursor continues; 400 if it is malformed or was issued to someone else."""
    try:
        walk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        valid = (
            isinstance(walk, dict)
            and walk.get("account") == account_id
            and set(walk) == CURSOR_KEYS
            and isinstance(walk["at"], str)
            and isinstance(walk["size"], int)
        )
        if valid:
            datetime.fromisoformat(walk["at"])
    except (ValueError, binascii.Error, TypeError, RecursionError):
        valid = False
    if not valid:
        raise InvalidParameters([iss.custom(("cursor",), "Invalid cursor")])
    result: dict[str, Any] = walk
    return result


def _usage_history(ctx: AppContext, caller: Caller, query: _Query) -> dict[str, Any]:
    cursor = query.params.get("cursor")
    if cursor is not None:
        if set(query.params) - {"cursor"}:
            query.issues.append(
                iss.custom(("cursor",), "A cursor carries its walk's filters: send it alone")
            )
            query.check()
        walk = _decode_cursor(cursor, caller.account_id)
    else:
        currency = query.choice("currency", ("USD", "DIEM", "BUNDLED_CREDITS"), None)
        start, end = query.time("startTimestamp"), query.time("endTimestamp")
        size = query.integer("pageSize", 1000, 10, 1000)
        if start is not None and end is not None and end <= start:
            query.issues.append(iss.custom(("endTimestamp",), "Must be later than startTimestamp"))
        query.check()
        walk = {
            "account": caller.account_id,
            "currency": currency,
            "size": size,
            "start": start.isoformat() if start else None,
            "end": end.isoformat() if end else None,
            "at": None,
            "id": None,
        }
    entries: list[LedgerEntry] = []
    if walk["currency"] in (None, "USD"):
        after = (datetime.fromisoformat(walk["at"]), str(walk["id"])) if walk["at"] else None
        with ctx.db.transaction() as session:
            entries = usage_after(
                session,
                caller.account_id,
                start=datetime.fromisoformat(walk["start"]) if walk["start"] else None,
                end=datetime.fromisoformat(walk["end"]) if walk["end"] else None,
                after=after,
                limit=int(walk["size"]) + 1,
            )
    page, more = entries[: int(walk["size"])], len(entries) > int(walk["size"])
    next_cursor = None
    if more:
        last = page[-1]
        next_cursor = _encode_cursor({**walk, "at": last.created_at.isoformat(), "id": last.id})
    return {"data": [usage_entry(e) for e in page], "nextCursor": next_cursor}


@router.get("/billing/usage-history")
async def get_usage_history(request: Request, caller: AdminCaller) -> JSONResponse:
    """The account's charges and refunds in ascending time order, walked with `nextCursor`
    (first page: `startTimestamp`, `endTimestamp`, `pageSize`, `currency`; then `cursor`)."""
    query = _Query(request.query_params)
    return JSONResponse(await run_in_threadpool(_usage_history, context(request), caller, query))
