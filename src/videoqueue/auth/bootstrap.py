"""The operator's account and first admin key, made on the first start."""

from __future__ import annotations

from sqlalchemy.orm import Session

from videoqueue.auth.keys import create_key
from videoqueue.auth.models import KeyKind
from videoqueue.billing.ledger import create_account, operator_account
from videoqueue.billing.models import AccountKind
from videoqueue.clock import Clock
from videoqueue.db.dialect import one_at_a_time

BOOTSTRAP_LOCK_KEY = 0x76715F6F  # "vq_o"


def ensure_operator(session: Session, clock: Clock) -> str | None:
    """Create the operator account and an admin key if there is none; return the new secret.

    API processes starting together take turns, so only the first makes them."""
    one_at_a_time(session, BOOTSTRAP_LOCK_KEY)
    if operator_account(session) is not None:
        return None
    account = create_account(
        session, kind=AccountKind.OPERATOR, clock=clock, name="operator", unlimited=True
    )
    _, secret = create_key(
        session, account_id=account.id, kind=KeyKind.ADMIN, clock=clock, name="operator admin key"
    )
    return secret
