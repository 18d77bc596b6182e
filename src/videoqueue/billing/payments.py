"""Every query on x402 payments: reserve one for settling, then record its credit or its failure.

Settling talks to a facilitator, so it happens between two transactions: `reserve_payment`
marks the payment PENDING (a concurrent submission of it gets 409), `record_settlement`
credits the payer's wallet with the payment id as the ledger reference (unique, so a payment
is credited once even if two processes got this far).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from videoqueue.billing.ledger import top_up
from videoqueue.billing.models import Account
from videoqueue.billing.wallet_models import PaymentState, X402Payment
from videoqueue.billing.wallets import wallet_account
from videoqueue.billing.x402 import Payment, TopUpFailed
from videoqueue.clock import Clock
from videoqueue.db.dialect import locked

STALE_PENDING = timedelta(minutes=10)
"""A PENDING payment older than this was abandoned (its API process died) and may be retried."""


@dataclass(frozen=True)
class Credit:
    """A settled payment and what it did to the payer's balance."""

    payment_id: str
    wallet_address: str
    amount_micros: int
    new_balance_micros: int
    network: str
    transaction: str


def _credit(row: X402Payment, account: Account) -> Credit:
    return Credit(
        payment_id=row.id,
        wallet_address=account.wallet_address or "",
        amount_micros=row.amount_micros,
        new_balance_micros=account.balance_micros,
        network=row.network,
        transaction=row.transaction or "",
    )


def reserve_payment(session: Session, payment: Payment, clock: Clock) -> Credit | None:
    """Claim the payment for settling; or the earlier credit if it was settled already.

    Raises `TopUpFailed`: 409 while another request settles it, 400 if the same single-use
    authorization comes back with different contents.
    """
    now = clock.now()
    row = session.scalar(locked(select(X402Payment).where(X402Payment.id == payment.payment_id)))
    if row is None:
        row = X402Payment(
            id=payment.payment_id,
            payload_sha256=payment.payload_sha256,
            network=payment.rail.network,
            state=PaymentState.PENDING,
            amount_micros=payment.amount_micros,
            created_at=now,
            updated_at=now,
        )
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            raise _in_progress() from None
        return None
    if row.payload_sha256 != payment.payload_sha256:
        raise TopUpFailed(
            "X402_INVALID_PAYMENT",
            "This payment authorization was already used",
            reason="nonce_already_used",
        )
    if row.state == PaymentState.SETTLED:
        account = session.get(Account, row.account_id)
        assert account is not None
        return _credit(row, account)
    if row.state == PaymentState.PENDING and now - row.updated_at < STALE_PENDING:
        raise _in_progress()
    row.state, row.updated_at, row.failure = PaymentState.PENDING, now, None
    session.flush()
    return None


def _in_progress() -> TopUpFailed:
    return TopUpFailed("X402_PAYMENT_IN_PROGRESS", "This payment is being processed", status=409)


def record_settlement(
    session: Session, *, payment_id: str, payer: str, transaction: str, clock: Clock
) -> Credit:
    """Mark the payment settled and credit the payer's wallet account, in one transaction."""
    row = session.scalar(locked(select(X402Payment).where(X402Payment.id == payment_id)))
    assert row is not None, "record_settlement needs a reserved payment"
    account = wallet_account(session, payer, clock)
    top_up(
        session,
        account_id=account.id,
        micros=row.amount_micros,
        clock=clock,
        reference=payment_id,
        note=f"x402 top-up on {row.network}: {transaction}",
    )
    row.state, row.account_id, row.transaction = PaymentState.SETTLED, account.id, transaction
    row.updated_at = clock.now()
    session.flush()
    return _credit(row, account)


def record_failure(session: Session, *, payment_id: str, reason: str, clock: Clock) -> None:
    """Mark the payment failed (it may be submitted again)."""
    row = session.scalar(locked(select(X402Payment).where(X402Payment.id == payment_id)))
    if row is not None and row.state == PaymentState.PENDING:
        row.state, row.failure, row.updated_at = PaymentState.FAILED, reason[:500], clock.now()
        session.flush()
