"""Middleware that edits a response as it starts, from what the request noted while it ran."""

from __future__ import annotations

from abc import ABC, abstractmethod

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ResponseStartHook(ABC):
    """Calls `_on_start` with each HTTP response's start message (an error's included), so a
    subclass can add headers that a dependency left in the request's state."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_started(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._on_start(scope, message)
            await send(message)

        await self.app(scope, receive, send_started)

    @abstractmethod
    async def _on_start(self, scope: Scope, message: Message) -> None:
        """Edit `message` (use `MutableHeaders(scope=message)` for its headers)."""
