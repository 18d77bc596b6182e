"""The body of `POST /api_keys`, checked against Venice's schema (400 DetailedError if not)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from videoqueue.auth.models import KeyKind, ModelPrivacy
from videoqueue.billing.models import LimitPeriod, usd_to_micros
from videoqueue.catalog import issues as iss
from videoqueue.catalog.issues import InvalidParameters, Issue

FIELDS = (
    "apiKeyType",
    "consumptionLimit",
    "limitPeriod",
    "modelPrivacy",
    "description",
    "expiresAt",
)
LIMIT_FIELDS = ("usd", "diem", "vcu")
MAX_DESCRIPTION = 64
MAX_LIMIT_USD = 9_999_999_999
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")


@dataclass(frozen=True)
class NewKey:
    kind: KeyKind
    description: str
    usd_limit_micros: int | None
    limit_period: LimitPeriod
    expires_at: datetime | None
    model_privacy: ModelPrivacy = ModelPrivacy.ALL


def _enum(
    body: dict[str, Any],
    field: str,
    options: tuple[str, ...],
    found: list[Issue],
    *,
    required: bool = False,
) -> str | None:
    if field not in body:
        if required:
            found.append(iss.required((field,), iss.quoted_options(options)))
        return None
    value = body[field]
    if value not in options:
        found.append(iss.not_in_enum((field,), options, value))
        return None
    return str(value)


def _usd_limit(body: dict[str, Any], found: list[Issue]) -> int | None:
    limits = body.get("consumptionLimit")
    if limits is None:
        return None
    if not isinstance(limits, dict):
        found.append(iss.wrong_type(("consumptionLimit",), "object", limits))
        return None
    unknown = [k for k in limits if k not in LIMIT_FIELDS]
    if unknown:
        found.append(iss.unrecognized_keys(("consumptionLimit",), unknown))
    for name in LIMIT_FIELDS:
        value = limits.get(name)
        path = ("consumptionLimit", name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            found.append(iss.wrong_type(path, "number", value))
        elif not 0 <= value <= MAX_LIMIT_USD:
            found.append(iss.custom(path, f"Number must be between 0 and {MAX_LIMIT_USD}"))
    usd = limits.get("usd")
    if isinstance(usd, int | float) and not isinstance(usd, bool) and 0 <= usd <= MAX_LIMIT_USD:
        return usd_to_micros(usd)
    return None


def _expiry(body: dict[str, Any], now: datetime, found: list[Issue]) -> datetime | None:
    value = body.get("expiresAt")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not (DATE.match(value) or DATE_TIME.match(value)):
        found.append(
            iss.custom(("expiresAt",), "Expected '', YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.sss]Z")
        )
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        found.append(iss.custom(("expiresAt",), "Invalid date"))
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment <= now:
        found.append(iss.custom(("expiresAt",), "Expiration must be in the future"))
        return None
    return moment


def parse_new_key(body: dict[str, Any], now: datetime) -> NewKey:
    """The key to create. Raises `InvalidParameters` listing every problem found."""
    found: list[Issue] = []
    unknown = [k for k in body if k not in FIELDS]
    if unknown:
        found.append(iss.unrecognized_keys((), unknown))
    kind = _enum(body, "apiKeyType", tuple(KeyKind), found, required=True)
    period = _enum(body, "limitPeriod", tuple(LimitPeriod), found)
    privacy = _enum(body, "modelPrivacy", tuple(ModelPrivacy), found)
    description = body.get("description")
    if "description" not in body:
        found.append(iss.required(("description",), "string"))
    elif not isinstance(description, str):
        found.append(iss.wrong_type(("description",), "string", description))
    elif len(description) > MAX_DESCRIPTION:
        found.append(iss.too_long(("description",), MAX_DESCRIPTION))
    usd_limit = _usd_limit(body, found)
    expires_at = _expiry(body, now, found)
    if found:
        raise InvalidParameters(found)
    assert kind is not None and isinstance(description, str)
    return NewKey(
        kind=KeyKind(kind),
        description=description,
        usd_limit_micros=usd_limit,
        limit_period=LimitPeriod(period or LimitPeriod.EPOCH),
        expires_at=expires_at,
        model_privacy=ModelPrivacy(privacy or ModelPrivacy.ALL),
    )
