"""What a `/video/*` request may do with the model it names, decided before the route's work,
and what the response says of that model (Venice's deprecation headers, spec §3.3).

The rate-limit dependency, which has read the body and knows the caller, calls `note_model`
(and, for a queue, `allow_model`: a key's `modelPrivacy`); the quote route calls
`admit_quote`. `ModelHeaders` writes
the headers noted here on the response, an error's included.
"""

from __future__ import annotations

from datetime import datetime

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import Message, Scope

from videoqueue.api.auth import bearer_secret, require_api_key
from videoqueue.api.response_start import ResponseStartHook
from videoqueue.auth.keys import AuthenticationFailed, allow_model
from videoqueue.catalog.deprecation import deprecation_headers
from videoqueue.catalog.entry import ModelEntry

STATE_KEY = "model_headers"


def note_model(request: Request, entry: ModelEntry, now: datetime) -> None:
    """Remember the headers the response about `entry` carries."""
    headers = deprecation_headers(entry, now)
    if headers:
        setattr(request.state, STATE_KEY, headers)


async def admit_quote(request: Request, entry: ModelEntry, now: datetime) -> None:
    """A quote needs no key, except for an upscale model: a Bearer key (401 without one, and
    no x402 discovery, as Venice's auth skill says) whose `modelPrivacy` allows the model."""
    note_model(request, entry, now)
    if entry.upscale is not None:
        if bearer_secret(request) is None:
            raise AuthenticationFailed()
        caller = await require_api_key(request)
        allow_model(caller.model_privacy, entry.privacy)


class ModelHeaders(ResponseStartHook):
    """Adds the headers `note_model` noted to the response."""

    async def _on_start(self, scope: Scope, message: Message) -> None:
        noted = scope.get("state", {}).get(STATE_KEY, {})
        headers = MutableHeaders(scope=message)
        for name, value in noted.items():
            headers[name] = value
