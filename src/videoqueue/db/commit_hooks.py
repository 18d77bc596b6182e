"""Work that runs once a session's transaction has committed (and never if it rolls back).

One listener on every `Session` runs what the transaction asked for in `session.info`. A
listener added to each session instead (`event.listen(session, …)`) costs SQLAlchemy about
20 µs to set up per session, and a queue request asks for two.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

_HOOKS = "videoqueue_after_commit"


def after_commit(session: Session, name: str, hook: Callable[[], None]) -> None:
    """Run `hook` once the session's transaction commits; a later hook of the same `name`
    in the same transaction replaces it."""
    session.info.setdefault(_HOOKS, {})[name] = hook


@event.listens_for(Session, "after_commit")
def _run_hooks(session: Session) -> None:
    for hook in session.info.pop(_HOOKS, {}).values():
        hook()


@event.listens_for(Session, "after_soft_rollback")
def _drop_hooks(session: Session, previous: SessionTransaction) -> None:
    if previous.parent is None:  # the transaction's own rollback, not a savepoint's
        session.info.pop(_HOOKS, None)
