"""Log lines as plain text or as one JSON object each, with the request and job they are about.

A request (or a worker's job) opens a scope with `log_fields`; whatever is logged inside it,
in this task, its threads from `run_in_threadpool`, or after `note_log_fields` added a job id,
carries those fields: `LogFields` copies them onto each record.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]

FIELDS = ("request_id", "job_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_fields: ContextVar[dict[str, str] | None] = ContextVar("videoqueue_log_fields", default=None)


@contextmanager
def log_fields(**fields: str) -> Iterator[None]:
    """A scope whose log records carry `fields` (and those `note_log_fields` adds to it)."""
    token = _fields.set({**(_fields.get() or {}), **fields})
    try:
        yield
    finally:
        _fields.reset(token)


def note_log_fields(**fields: str) -> None:
    """Add `fields` to the current scope: records logged anywhere in it from now carry them."""
    current = _fields.get()
    if current is not None:
        current.update(fields)


def current_log_field(name: str) -> str | None:
    return (_fields.get() or {}).get(name)


class LogFields(logging.Filter):
    """Copies the scope's fields onto each record (an explicit `extra=` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_fields.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class TextFormatter(logging.Formatter):
    """`fmt`, then the request and job ids the record carries (`request_id=… job_id=…`)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        fields = [f"{name}={getattr(record, name)}" for name in FIELDS if hasattr(record, name)]
        return " ".join([super().formatMessage(record), *fields])


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, pid, message, request and job ids, and
    the traceback of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc_info"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(line, default=str)


def resolve_log_format(setting: LogFormat | Literal["auto"]) -> LogFormat:
    """The setting's format: `auto` is text on a terminal, JSON elsewhere (a file, journald,
    a container's log)."""
    if setting != "auto":
        return setting
    return "text" if sys.stderr.isatty() else "json"


def handler_for(log_format: LogFormat, text_format: str = TEXT_FORMAT) -> logging.Handler:
    """A stderr handler writing `log_format`, the scope's fields added."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter() if log_format == "json" else TextFormatter(text_format)
    handler.setFormatter(formatter)
    handler.addFilter(LogFields())
    return handler


def configure_logging(log_format: LogFormat, text_format: str = TEXT_FORMAT) -> None:
    """Send this process's records (INFO and up) to stderr in `log_format`."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler_for(log_format, text_format))
    root.setLevel(logging.INFO)


def configured_log_format() -> LogFormat | None:
    """The format `configure_logging` gave this process, None if it gave none (as in a test):
    what a child process of it should log in."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, JsonFormatter):
            return "json"
        if isinstance(handler.formatter, TextFormatter):
            return "text"
    return None


def uvicorn_log_config(log_format: LogFormat) -> dict[str, Any]:
    """uvicorn's logging config for `log_format`, in every API process: uvicorn's records and
    ours through the same formatter, the request and job ids added. uvicorn's access log is
    left out (`serve` turns it off): our request line, which carries the request id, is the
    one line of each request."""
    formatter: dict[str, Any] = {"()": f"{__name__}.JsonFormatter"}
    if log_format == "text":
        formatter = {"()": f"{__name__}.TextFormatter", "fmt": TEXT_FORMAT}
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "lines",
        "filters": ["fields"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"fields": {"()": f"{__name__}.LogFields"}},
        "formatters": {"lines": formatter},
        "handlers": {"lines": handler},
        "root": {"handlers": ["lines"], "level": "INFO"},
        "loggers": {
            "uvicorn": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.error": {"level": "INFO"},
        },
    }
