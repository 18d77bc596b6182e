"""The SQL statements a block of code sends to a database, as the driver is given them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from videoqueue.db.session import Database


@contextmanager
def recorded_statements(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """Each statement (and its parameters) `db`'s engine executes inside the block, in order."""
    executed: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        executed.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield executed
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
