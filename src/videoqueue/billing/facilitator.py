"""Facilitators: who verifies and settles an x402 payment.

`RemoteFacilitator` is x402's HTTP facilitator client (it settles on chain). `LocalFacilitator`
is for offline use and tests: it checks an EIP-3009 `transferWithAuthorization` exactly as a
facilitator would before settling (signature, recipient, amount, time window) but **moves no
funds**: a top-up through it credits the ledger on the strength of the signature alone. Replays
are refused by the payments table, which plays the chain's used-nonce role.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Protocol

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from x402.http import FacilitatorConfig, HTTPFacilitatorClientSync
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse, VerifyResponse

from videoqueue.billing.x402 import read_authorization
from videoqueue.clock import Clock

if TYPE_CHECKING:
    from x402.mechanisms.evm.types import ExactEIP3009Payload

LOCAL_TRANSACTION_PREFIX = "local-"


class Facilitator(Protocol):
    """Verifies a payment against our requirements, then settles it (x402's sync client shape)."""

    def verify(
        self, payload: PaymentPayload, requirements: PaymentRequirements
    ) -> VerifyResponse: ...

    def settle(
        self, payload: PaymentPayload, requirements: PaymentRequirements
    ) -> SettleResponse: ...


RemoteFacilitator = HTTPFacilitatorClientSync


def facilitator_at(url: str | None, timeout_seconds: float, clock: Clock) -> Facilitator:
    """The remote facilitator at `url`, else (no URL) the local one."""
    if url:
        return RemoteFacilitator(FacilitatorConfig(url=url, timeout=timeout_seconds))
    return LocalFacilitator(clock)


class LocalFacilitator:
    """Checks EIP-3009 authorizations offline and settles them in the ledger only."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def verify(self, payload: PaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        reason, payer = self._check(payload, requirements)
        return VerifyResponse(is_valid=reason is None, invalid_reason=reason, payer=payer)

    def settle(self, payload: PaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        reason, payer = self._check(payload, requirements)
        if reason is not None:
            return SettleResponse(
                success=False,
                error_reason=reason,
                payer=payer,
                transaction="",
                network=requirements.network,
            )
        signature = str(payload.payload.get("signature", ""))
        transaction = LOCAL_TRANSACTION_PREFIX + hashlib.sha256(signature.encode()).hexdigest()
        return SettleResponse(
            success=True,
            payer=payer,
            transaction=transaction,
            network=requirements.network,
            amount=requirements.amount,
        )

    def _check(
        self, payload: PaymentPayload, requirements: PaymentRequirements
    ) -> tuple[str | None, str | None]:
        """(why the payment is invalid or None, the payer)."""
        # Imported here: `x402.mechanisms.evm` loads web3, which only a payment needs.
        from x402.mechanisms.evm.constants import (
            ERR_AUTHORIZATION_VALUE_MISMATCH,
            ERR_INVALID_SIGNATURE,
            ERR_NETWORK_MISMATCH,
            ERR_RECIPIENT_MISMATCH,
            ERR_UNSUPPORTED_SCHEME,
            ERR_VALID_AFTER_FUTURE,
            ERR_VALID_BEFORE_EXPIRED,
        )

        if requirements.scheme != "exact" or payload.accepted.scheme != "exact":
            return ERR_UNSUPPORTED_SCHEME, None
        if not requirements.network.startswith("eip155:"):
            return ERR_NETWORK_MISMATCH, None
        parsed = read_authorization(payload.payload)
        if parsed is None:
            return ERR_INVALID_SIGNATURE, None
        auth = parsed.authorization
        payer = auth.from_address
        if auth.to.lower() != requirements.pay_to.lower():
            return ERR_RECIPIENT_MISMATCH, payer
        if not auth.value.isdigit() or int(auth.value) != int(requirements.amount):
            return ERR_AUTHORIZATION_VALUE_MISMATCH, payer
        now = self.clock.now().timestamp()
        if int(auth.valid_after) > now:
            return ERR_VALID_AFTER_FUTURE, payer
        if int(auth.valid_before) <= now:
            return ERR_VALID_BEFORE_EXPIRED, payer
        try:
            signer = Account.recover_message(
                self._typed_data(parsed, requirements), signature=parsed.signature
            )
        except Exception:  # a malformed address or signature is simply not the payer's
            return ERR_INVALID_SIGNATURE, payer
        if signer.lower() != payer.lower():
            return ERR_INVALID_SIGNATURE, payer
        return None, payer

    @staticmethod
    def _typed_data(
        parsed: ExactEIP3009Payload, requirements: PaymentRequirements
    ) -> SignableMessage:
        """The EIP-712 message a payer signs for USDC's `transferWithAuthorization`."""
        from x402.mechanisms.evm.types import AUTHORIZATION_TYPES

        auth = parsed.authorization
        return encode_typed_data(
            domain_data={
                "name": requirements.extra.get("name", ""),
                "version": requirements.extra.get("version", ""),
                "chainId": int(requirements.network.removeprefix("eip155:")),
                "verifyingContract": requirements.asset,
            },
            message_types=AUTHORIZATION_TYPES,
            message_data={
                "from": auth.from_address,
                "to": auth.to,
                "value": int(auth.value),
                "validAfter": int(auth.valid_after),
                "validBefore": int(auth.valid_before),
                "nonce": bytes.fromhex(auth.nonce.removeprefix("0x")),
            },
        )
