"""The database handle: an engine, its sessions, and the unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from videoqueue.db.dialect import READ_ONLY_OPTION, make_engine, writer_gate


class Database:
    """One per process. Services take a `Session`; only callers at the boundary commit."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = writer_gate(self.engine)
        self._reads = sessionmaker(
            self.engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose work is committed together on success, or rolled back."""
        with self._writer or nullcontext(), self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session that only reads: on SQLite it does not queue behind writers."""
        with self._reads() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        if self._writer is not None:
            self._writer.close()
