"""The one base of every error videoqueue answers with a status code.

Each layer defines its own subclasses beside the code that raises them; `api/` renders
them into Venice's bodies. No web framework is imported here.
"""

from __future__ import annotations

from typing import Any


class VideoqueueError(Exception):
    """Request failed."""

    status: int = 500
    code: str | None = None

    def __init__(
        self, message: str | None = None, *, status: int | None = None, code: str | None = None
    ) -> None:
        self.message = message or (type(self).__doc__ or "Request failed.").strip()
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """The JSON body Venice answers this error with (StandardError by default)."""
        body: dict[str, Any] = {"error": self.message}
        if self.code:
            body["code"] = self.code
        return body

    def headers(self) -> dict[str, str]:
        """Response headers this error adds (e.g. `PAYMENT-REQUIRED` on a 402)."""
        return {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Crossing a process boundary keeps the message, status, code and any other fields.
        return (_restore, (type(self), self.__dict__))


def _restore(cls: type[VideoqueueError], state: dict[str, Any]) -> VideoqueueError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message"))
    error.__dict__.update(state)
    return error
