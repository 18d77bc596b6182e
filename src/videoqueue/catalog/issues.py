"""Validation failures as data, rendered the way Venice (Zod) writes them.

An `Issue` carries Zod's `code`, `path`, `message` and the code's own keys; `InvalidParameters`
renders a list of them as Venice's DetailedError: `{"error", "details", "issues"}`, where
`details` is Zod's `format()` tree and `issues[].expected` lists allowed values as
`'16:9' | '9:16'` (Venice's docs site parses that text).
"""

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
    union_errors: tuple[tuple[Issue, ...], ...] = ()

    def as_json(self) -> dict[str, Any]:
        body = {"code": self.code, **self.extra}
        if self.code == "invalid_union":
            body["unionErrors"] = [
                {"issues": [i.as_json() for i in branch], "name": "ZodError"}
                for branch in self.union_errors
            ]
        return {**body, "path": list(self.path), "message": self.message}


def quoted_options(options: Iterable[object]) -> str:
    """Venice's `expected` text: `'16:9' | '9:16'` (numbers unquoted, as Zod prints them)."""
    return " | ".join(f"'{o}'" if isinstance(o, str) else str(o) for o in options)


def _shown(value: object) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def received_text(value: object) -> str:
    """Zod's name for the JSON type of `value`."""
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
        "invalid_type",
        path,
        f"Expected {expected}, received {got}",
        {"expected": expected, "received": got},
    )


def not_in_enum(path: Path, options: Sequence[object], value: object) -> Issue:
    """The issue for `value` outside `options`: a type issue when it is not even the type."""
    expected = quoted_options(options)
    wanted = (str,) if all(isinstance(o, str) for o in options) else (int,)
    if isinstance(value, bool) or not isinstance(value, wanted):
        return wrong_type(path, expected, value)
    return Issue(
        "invalid_enum_value",
        path,
        f"Invalid enum value. Expected {expected}, received '{value}'",
        {"expected": expected, "received": value, "options": list(options)},
    )


def invalid_literal(path: Path, expected: object, value: object, *, present: bool) -> Issue:
    extra: dict[str, Any] = {"expected": expected}
    if present:  # Zod's `received: undefined` disappears from JSON
        extra["received"] = value
    shown = "true" if expected is True else _shown(expected)
    return Issue("invalid_literal", path, f"Invalid literal value, expected {shown}", extra)


def too_long(path: Path, maximum: int, kind: str = "string") -> Issue:
    what = "character(s)" if kind == "string" else "element(s)"
    noun = "String" if kind == "string" else "Array"
    return Issue(
        "too_big",
        path,
        f"{noun} must contain at most {maximum} {what}",
        {"maximum": maximum, "type": kind, "inclusive": True, "exact": False},
    )


def too_short(path: Path, minimum: int, kind: str = "string") -> Issue:
    what = "character(s)" if kind == "string" else "element(s)"
    noun = "String" if kind == "string" else "Array"
    return Issue(
        "too_small",
        path,
        f"{noun} must contain at least {minimum} {what}",
        {"minimum": minimum, "type": kind, "inclusive": True, "exact": False},
    )


def _js_number(value: float) -> float | int:
    """A bound as JavaScript writes it in JSON: `15`, never `15.0`."""
    return int(value) if float(value).is_integer() else value


def number_too_small(path: Path, minimum: float) -> Issue:
    return Issue(
        "too_small",
        path,
        f"Number must be greater than or equal to {_js_number(minimum)}",
        {"minimum": _js_number(minimum), "type": "number", "inclusive": True, "exact": False},
    )


def number_too_big(path: Path, maximum: float) -> Issue:
    return Issue(
        "too_big",
        path,
        f"Number must be less than or equal to {_js_number(maximum)}",
        {"maximum": _js_number(maximum), "type": "number", "inclusive": True, "exact": False},
    )


def not_integer(path: Path) -> Issue:
    return Issue(
        "invalid_type",
        path,
        "Expected integer, received float",
        {"expected": "integer", "received": "float"},
    )


def unrecognized_keys(path: Path, keys: Sequence[str]) -> Issue:
    listed = ", ".join(f"'{k}'" for k in keys)
    return Issue(
        "unrecognized_keys", path, f"Unrecognized key(s) in object: {listed}", {"keys": list(keys)}
    )


def invalid_union(path: Path, branches: Sequence[Sequence[Issue]]) -> Issue:
    """Zod's issue for a value that no member of a union accepts."""
    return Issue(
        "invalid_union",
        path,
        "Invalid input",
        union_errors=tuple(tuple(branch) for branch in branches),
    )


def invalid_url(path: Path) -> Issue:
    return Issue("invalid_string", path, "Invalid url", {"validation": "url"})


def custom(path: Path, message: str) -> Issue:
    return Issue("custom", path, message)


def _add_to_tree(tree: dict[str, Any], issue: Issue) -> None:
    if issue.code == "invalid_union":  # Zod's format() reports what each member said
        for branch in issue.union_errors:
            for inner in branch:
                _add_to_tree(tree, inner)
        return
    node = tree
    for part in issue.path:
        node = node.setdefault(str(part), {"_errors": []})
    node["_errors"].append(issue.message)


def details_tree(issues: Iterable[Issue]) -> dict[str, Any]:
    """Zod's `format()` tree: `{"_errors": [...], "field": {"_errors": [...]}}`."""
    tree: dict[str, Any] = {"_errors": []}
    for issue in issues:
        _add_to_tree(tree, issue)
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
