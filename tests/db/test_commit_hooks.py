"""Work asked for in a transaction runs once it commits, and never if it rolls back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from videoqueue.db.commit_hooks import after_commit
from videoqueue.db.session import Database


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'hooks.db'}")


def test_a_hook_runs_once_after_its_transaction_commits(db: Database) -> None:
    ran: list[str] = []
    with db.transaction() as session:
        after_commit(session, "note", lambda: ran.append("first"))
        session.execute(text("SELECT 1"))
        assert ran == []  # not before the commit
    assert ran == ["first"]

    with db.transaction() as session:  # the same hook is not run by a later commit
        session.execute(text("SELECT 1"))
    assert ran == ["first"]


def test_a_later_hook_of_the_same_name_replaces_the_earlier(db: Database) -> None:
    ran: list[str] = []
    with db.transaction() as session:
        after_commit(session, "wake", lambda: ran.append("wake 1"))
        after_commit(session, "count", lambda: ran.append("count"))
        after_commit(session, "wake", lambda: ran.append("wake 2"))
    assert ran == ["wake 2", "count"]


def test_a_rolled_back_transaction_runs_none_of_its_hooks(db: Database) -> None:
    ran: list[str] = []
    with Session(db.engine) as session:
        with pytest.raises(RuntimeError), session.begin():
            session.execute(text("SELECT 1"))
            after_commit(session, "note", lambda: ran.append("rolled back"))
            raise RuntimeError("the work failed")
        with session.begin():  # the same session's next transaction commits
            session.execute(text("SELECT 1"))
    assert ran == []


def test_a_savepoint_rolled_back_keeps_the_transaction_s_hooks(db: Database) -> None:
    ran: list[str] = []
    with db.transaction() as session:
        after_commit(session, "note", lambda: ran.append("committed"))
        with session.begin_nested() as savepoint:
            session.execute(text("SELECT 1"))
            savepoint.rollback()
    assert ran == ["committed"]
