"""Validation failures as data, rendered the way Venice (Zod) writes them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from videoqueue.errors import VideoqueueError

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """One Zod-style issue: `code`, `path`, `message` and the code's own keys."""

    code: str
    path: Path
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, **self.extra, "path": list(self.path), "message": self.message}


def quoted_options(options: Iterable[object]) -> str:
    """Venice's `expected` text: `'16:9' | '9:16'` (numbers unquoted, as Zod prints them)."""
    return " | ".join(repr(o) if isinstance(o, str) else str(o) for o in options)


def received_text(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def required(path: Path, expected: str) -> Issue:
    return Issue("invalid_type", path, "Required", {"expected": expected, "received": "undefined"})


def wrong_type(path: Path, expected: str, value: object) -> Issue:
    got = received_text(value)
    return Issue(
        "invalid_type", path, f"Expected {expected}, received {got}",
        {"expected": expected, "received": got},
    )


def not_in_enum(path: Path, options: Sequence[object], value: object) -> Issue:
    expected = quoted_options(options)
    shown = repr(value) if isinstance(value, str) else str(value)
    return Issue(
        "invalid_enum_value", path, f"Invalid enum value. Expected {expected}, received {shown}",
        {"expected": expected, "received": value, "options": list(options)},
    )


def too_long(path: Path, maximum: int, kind: str = "string") -> Issue:
    what = "character(s)" if kind == "string" else "element(s)"
    noun = "String" if kind == "string" else "Array"
    return Issue(
        "too_big", path, f"{noun} must contain at most {maximum} {what}",
        {"maximum": maximum, "type": kind, "inclusive": True, "exact": False},
    )


def too_short(path: Path, minimum: int, kind: str = "string") -> Issue:
    what = "character(s)" if kind == "string" else "element(s)"
    noun = "String" if kind == "string" else "Array"
    return Issue(
        "too_small", path, f"{noun} must contain at least {minimum} {what}",
        {"minimum": minimum, "type": kind, "inclusive": True, "exact": False},
    )


def unrecognized_keys(path: Path, keys: Sequence[str]) -> Issue:
    listed = ", ".join(f"'{k}'" for k in keys)
    return Issue(
        "unrecognized_keys", path, f"Unrecognized key(s) in object: {listed}", {"keys": list(keys)}
    )


def custom(path: Path, message: str) -> Issue:
    return Issue("custom", path, message)


def details_tree(issues: Iterable[Issue]) -> dict[str, Any]:
    """Zod's `format()` tree: `{"_errors": [...], "field": {"_errors": [...]}}`."""
    tree: dict[str, Any] = {"_errors": []}
    for issue in issues:
        node = tree
        for part in issue.path:
            node = node.setdefault(str(part), {"_errors": []})
        node["_errors"].append(issue.message)
    return tree


class InvalidParameters(VideoqueueError):
    """Invalid request parameters"""

    status = 400

    def __init__(self, issues: Sequence[Issue]) -> None:
        super().__init__()
        self.issues = tuple(issues)

    def body(self) -> dict[str, Any]:
        return {
            "error": self.message,
            "details": details_tree(self.issues),
            "issues": [i.as_json() for i in self.issues],
        }


class BadRequest(VideoqueueError):
    """Invalid request"""

    status = 400
