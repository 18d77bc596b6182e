"""x402 top-ups: the rails this server takes payment on, and a signed payment read against them.

A rail is one (network, asset, receiver) triple. Amounts are USDC base units, which are micro
dollars, the unit of the ledger. The payment id that makes a top-up idempotent is derived from
what the chain itself makes single-use: for EIP-3009, the (token, payer, nonce) of the
authorization; for Solana, the signed transaction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from x402.schemas import PaymentPayload, PaymentRequirements

from videoqueue.billing.models import MICROS_PER_USD
from videoqueue.billing.wallets import EVM_ADDRESS, normalize_wallet
from videoqueue.errors import VideoqueueError

if TYPE_CHECKING:
    from x402.mechanisms.evm.types import ExactEIP3009Payload

PAYMENT_HEADERS = ("payment-signature", "x-payment", "x-402-payment")
SOLANA_MAINNET = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
SOLANA_USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
USDC_DECIMALS = 6
MAX_TIMEOUT_SECONDS = 300
NETWORK_NAMES = {"eip155:8453": "base", "eip155:84532": "base-sepolia", SOLANA_MAINNET: "solana"}
_BYTES32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


class TopUpFailed(VideoqueueError):
    """Invalid payment header"""

    status = 400

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        status: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.reason = reason

    def body(self) -> dict[str, Any]:
        """The top-up route's shape: the code in `error`, then `message` and `details`."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.reason:
            body["details"] = {"reason": self.reason}
        return body


@dataclass(frozen=True)
class Rail:
    """One way to pay: a CAIP-2 network, the USDC contract (or mint) there, and our receiver."""

    network: str
    asset: str
    pay_to: str
    extra: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def is_evm(self) -> bool:
        return self.network.startswith("eip155:")

    @property
    def name(self) -> str:
        """The short name Venice lists in `supportedChains` (`base`, `solana`)."""
        return NETWORK_NAMES.get(self.network, self.network)

    def requirement(self, amount_micros: int, *, network: str | None = None) -> PaymentRequirements:
        return PaymentRequirements(
            scheme="exact",
            network=network or self.network,
            asset=self.asset,
            amount=str(amount_micros),
            pay_to=self.pay_to,
            max_timeout_seconds=MAX_TIMEOUT_SECONDS,
            extra=dict(self.extra),
        )


@dataclass(frozen=True)
class TopUpTerms:
    """The rails and the bounds of a top-up (built once, by `create_app`)."""

    rails: tuple[Rail, ...]
    minimum_micros: int
    maximum_micros: int
    suggested_micros: int

    def rail_for(self, network: str) -> Rail | None:
        return next((r for r in self.rails if network == r.network or network in r.aliases), None)


@dataclass(frozen=True)
class Payment:
    """A signed payment that fits one of our rails, with our requirement at its amount."""

    payload: PaymentPayload
    rail: Rail
    requirements: PaymentRequirements
    amount_micros: int
    payer: str | None
    payment_id: str
    payload_sha256: str


def read_payment(header: str, terms: TopUpTerms) -> Payment:
    """Decode a `PAYMENT-SIGNATURE` value and check it against the rails. Raises `TopUpFailed`."""
    payload = _decode(header)
    accepted = payload.accepted
    if accepted.scheme != "exact":
        raise TopUpFailed("X402_UNSUPPORTED_SCHEME", "Only the exact scheme is accepted")
    rail = terms.rail_for(accepted.network)
    if rail is None:
        raise TopUpFailed("X402_UNSUPPORTED_NETWORK", "Unsupported payment network")
    if not _same_address(accepted.asset, rail.asset, rail):
        raise TopUpFailed("X402_UNSUPPORTED_TOKEN", "Unsupported payment token")
    if not _same_address(accepted.pay_to, rail.pay_to, rail):
        raise TopUpFailed("X402_INVALID_PAYMENT_RECIPIENT", "Payment is not to this server")
    digest = hashlib.sha256(json.dumps(payload.payload, sort_keys=True).encode()).hexdigest()
    if rail.is_evm:
        amount, payer, single_use = _read_eip3009(payload, rail)
    else:
        amount, payer = _amount(accepted.amount), None
        single_use = digest
    _check_bounds(amount, terms)
    key = f"{rail.network}|{rail.asset.lower()}|{single_use}"
    return Payment(
        payload=payload,
        rail=rail,
        requirements=rail.requirement(amount),
        amount_micros=amount,
        payer=payer,
        payment_id="x402-" + hashlib.sha256(key.encode()).hexdigest()[:32],
        payload_sha256=digest,
    )


def _decode(header: str) -> PaymentPayload:
    try:
        data = json.loads(base64.b64decode(header.strip(), validate=True).decode("utf-8"))
        if not isinstance(data, dict) or data.get("x402Version") != 2:
            raise ValueError("an x402 version 2 payment payload is required")
        return PaymentPayload.model_validate(data)
    except (binascii.Error, ValueError, ValidationError, RecursionError):
        raise TopUpFailed(
            "X402_INVALID_PAYMENT_FORMAT", "Payment header is not a base64 x402 v2 PaymentPayload"
        ) from None


def _same_address(given: str, ours: str, rail: Rail) -> bool:
    return given.lower() == ours.lower() if rail.is_evm else given == ours


def _amount(value: object) -> int:
    try:
        amount = int(str(value), 10)
    except ValueError:
        raise TopUpFailed("X402_INVALID_AMOUNT", "Payment amount is not a whole number") from None
    if amount <= 0:
        raise TopUpFailed("X402_INVALID_AMOUNT", "Payment amount must be positive")
    return amount


def _check_bounds(amount: int, terms: TopUpTerms) -> None:
    if amount < terms.minimum_micros:
        raise TopUpFailed(
            "X402_AMOUNT_TOO_LOW",
            f"Minimum top-up is ${Decimal(terms.minimum_micros) / MICROS_PER_USD}",
        )
    if amount > terms.maximum_micros:
        raise TopUpFailed(
            "X402_AMOUNT_TOO_HIGH",
            f"Maximum top-up is ${Decimal(terms.maximum_micros) / MICROS_PER_USD}",
        )


def _read_eip3009(payload: PaymentPayload, rail: Rail) -> tuple[int, str, str]:
    """(amount, payer, nonce) of an EIP-3009 `transferWithAuthorization` payload."""
    parsed = read_authorization(payload.payload)
    if parsed is None:
        raise TopUpFailed(
            "X402_INVALID_PAYMENT_FORMAT",
            "Payment payload is not an EIP-3009 transferWithAuthorization",
        )
    authorization = parsed.authorization
    if not _same_address(authorization.to, rail.pay_to, rail):
        raise TopUpFailed("X402_INVALID_PAYMENT_RECIPIENT", "Payment is not to this server")
    amount = _amount(authorization.value)
    payer = normalize_wallet(authorization.from_address)
    if payer is None or not EVM_ADDRESS.match(payer):
        raise TopUpFailed("X402_INVALID_PAYMENT_PAYER", "Payment payer is not an EVM address")
    return amount, payer, authorization.nonce.lower()


def read_authorization(inner: dict[str, Any]) -> ExactEIP3009Payload | None:
    """The EIP-3009 authorization and signature of an exact-EVM payload, if well formed."""
    # Imported here: `x402.mechanisms.evm` loads web3, which only a payment needs.
    from x402.mechanisms.evm.types import ExactEIP3009Payload

    if not isinstance(inner.get("authorization"), dict):
        return None
    parsed = ExactEIP3009Payload.from_dict(inner)
    auth = parsed.authorization
    well_formed = (
        isinstance(parsed.signature, str)
        and parsed.signature.startswith("0x")
        and all(
            isinstance(v, str)
            for v in (
                auth.from_address,
                auth.to,
                auth.value,
                auth.valid_after,
                auth.valid_before,
                auth.nonce,
            )
        )
        and bool(_BYTES32.match(auth.nonce))
        and auth.valid_after.isdigit()
        and auth.valid_before.isdigit()
        and bool(EVM_ADDRESS.match(auth.to))
    )
    return parsed if well_formed else None
