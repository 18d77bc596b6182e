"""Wallet sign-in: the `SIGN-IN-WITH-X` header, checked by every rule of spec §2.3.

The header is base64 of a JSON envelope `{address, message | structured fields, signature,
chainId?, type?, timestamp?}`. Verification is pure (no database); consuming the nonce is the
caller's second step (`videoqueue.auth.nonces`), done once the signature holds.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import base58
from eth_account import Account
from eth_account.messages import defunct_hash_message, encode_defunct
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from videoqueue.auth.siwx_message import (
    Family,
    MalformedMessage,
    SignInMessage,
    parse_message,
    parse_time,
)
from videoqueue.billing.wallets import normalize_wallet
from videoqueue.errors import VideoqueueError

SIGN_IN_HEADERS = ("sign-in-with-x", "x-sign-in-with-x")
SOLANA_MAINNET_REFERENCE = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
MAX_AGE = timedelta(minutes=5)
MAX_FUTURE_SKEW = timedelta(seconds=30)
MAX_TIMESTAMP_SKEW = timedelta(seconds=30)
NONCE_MEMORY = timedelta(seconds=330)
FALLBACK_MESSAGE = "Sign-in-with-X authentication failed"

_MESSAGES = {
    "X402_SIGN_IN_PARSE_ERROR": "Sign-in-with-X header is not base64-encoded JSON",
    "X402_SIGN_IN_INVALID_PAYLOAD": "Sign-in-with-X payload needs address, message (or its fields) and signature",  # noqa: E501
    "X402_SIGN_IN_INVALID_MESSAGE": "Sign-in-with-X message is not a valid sign-in message",
    "X402_SIGN_IN_MISSING_NONCE": "Sign-in-with-X message has no nonce",
    "X402_SIGN_IN_ADDRESS_MISMATCH": "Sign-in-with-X address does not match the signed message",
    "X402_SIGN_IN_DOMAIN_MISMATCH": "Sign-in-with-X message is for another domain",
    "X402_SIGN_IN_UNSUPPORTED_CHAIN": "Sign-in-with-X chain is not supported",
    "X402_SIGN_IN_CHAIN_MISMATCH": "Sign-in-with-X chainId does not match the signed message",
    "X402_SIGN_IN_EXPIRED": "Sign-in-with-X message has expired",
    "X402_SIGN_IN_FUTURE_TIMESTAMP": "Sign-in-with-X message is issued in the future",
    "X402_SIGN_IN_NOT_BEFORE": "Sign-in-with-X message is not valid yet",
    "X402_SIGN_IN_TIMESTAMP_MISMATCH": "Sign-in-with-X timestamp does not match the message's Issued At",  # noqa: E501
    "X402_SIGN_IN_INVALID_SIGNATURE": "Invalid Sign-in-with-x signature",
}
_SOLANA_REFERENCE = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")
_STRUCTURED_REQUIRED = ("domain", "address", "uri", "issuedAt", "chainId")


class SignInRejected(VideoqueueError):
    """Sign-in-with-X authentication failed"""

    status = 401

    def __init__(self, code: str) -> None:
        super().__init__(_MESSAGES.get(code, FALLBACK_MESSAGE), code=code)


class ContractWalletVerifier(Protocol):
    """EIP-1271: asks a contract wallet on `chain_id` whether it accepts `signature` for a hash.

    videoqueue ships no implementation (it would need a chain RPC); an operator passes one in
    `SignInPolicy`. It returns False for "not accepted" and raises when it cannot tell.
    """

    def is_valid_signature(
        self, *, address: str, chain_id: int, message_hash: bytes, signature: bytes
    ) -> bool: ...


@dataclass(frozen=True)
class SignInPolicy:
    """What this server accepts: the domains messages may name (bare hosts; challenges name
    the first) and the chains they may be for."""

    domains: tuple[str, ...]
    evm_chain_ids: tuple[int, ...] = (8453,)
    solana_chains: frozenset[str] = frozenset({SOLANA_MAINNET_REFERENCE})
    contract_wallets: ContractWalletVerifier | None = None


@dataclass(frozen=True)
class SignIn:
    """A verified sign-in: the signer (normalised address) and the nonce still to consume."""

    address: str
    family: Family
    nonce: str
    nonce_expires_at: datetime


def domain_host(domain: str) -> str:
    """The bare host of a domain, origin or URL (scheme, port and path stripped), lower-case."""
    text = domain.strip()
    return (urlsplit(text if "://" in text else "//" + text).hostname or "").lower()


def verify_sign_in(header: str, policy: SignInPolicy, now: datetime) -> SignIn:
    """Check a `SIGN-IN-WITH-X` header value. Raises `SignInRejected` with the failing rule."""
    envelope = _decode(header)
    address = envelope.get("address")
    signature = envelope.get("signature")
    if not isinstance(address, str) or not isinstance(signature, str):
        raise SignInRejected("X402_SIGN_IN_INVALID_PAYLOAD")
    message, text = _message(envelope)
    if message.nonce is None:
        raise SignInRejected("X402_SIGN_IN_MISSING_NONCE")
    _check_address(message, address)
    if domain_host(message.domain) not in policy.domains:
        raise SignInRejected("X402_SIGN_IN_DOMAIN_MISMATCH")
    chain = _check_chain(message, envelope.get("chainId"), policy)
    issued_at = _check_times(message, envelope.get("timestamp"), now)
    if message.family is Family.EVM:
        _check_evm_signature(text, message.address, signature, int(chain), policy)
    else:
        _check_solana_signature(text, message.address, signature)
    normalized = normalize_wallet(message.address)
    if normalized is None:
        raise SignInRejected("X402_SIGN_IN_INVALID_WALLET")
    return SignIn(
        address=normalized,
        family=message.family,
        nonce=message.nonce,
        nonce_expires_at=issued_at + NONCE_MEMORY,
    )


def _decode(header: str) -> dict[str, Any]:
    value = header.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
        envelope = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):
        raise SignInRejected("X402_SIGN_IN_PARSE_ERROR") from None
    if not isinstance(envelope, dict):
        raise SignInRejected("X402_SIGN_IN_PARSE_ERROR")
    return envelope


def _message(envelope: dict[str, Any]) -> tuple[SignInMessage, str]:
    """The message and the exact text that was signed (given, or rebuilt from the fields)."""
    text = envelope.get("message")
    if text is None:
        text = _rebuild(envelope)
    elif not isinstance(text, str):
        raise SignInRejected("X402_SIGN_IN_INVALID_PAYLOAD")
    try:
        return parse_message(text), text
    except MalformedMessage:
        raise SignInRejected("X402_SIGN_IN_INVALID_MESSAGE") from None


def _rebuild(fields: dict[str, Any]) -> str:
    """The text of the structured form; its `Chain ID:` line holds the bare chain reference."""
    if any(not isinstance(fields.get(name), str | int) for name in _STRUCTURED_REQUIRED):
        raise SignInRejected("X402_SIGN_IN_INVALID_PAYLOAD")
    if fields.get("nonce") is None:
        raise SignInRejected("X402_SIGN_IN_MISSING_NONCE")
    family = _family(fields)
    text_fields = (
        "domain",
        "address",
        "uri",
        "version",
        "nonce",
        "issuedAt",
        "statement",
        "expirationTime",
        "notBefore",
        "requestId",
    )
    present = {name: fields.get(name) for name in text_fields}
    resources = fields.get("resources") or []
    if (
        any(v is not None and not isinstance(v, str) for v in present.values())
        or not isinstance(resources, list)
        or not all(isinstance(r, str) for r in resources)
    ):
        raise SignInRejected("X402_SIGN_IN_INVALID_PAYLOAD")
    message = SignInMessage(
        family=family,
        domain=fields["domain"],
        address=fields["address"],
        uri=fields["uri"],
        version=fields.get("version") or "1",
        chain_id=_chain_reference(fields["chainId"], family),
        nonce=fields["nonce"],
        issued_at=fields["issuedAt"],
        statement=fields.get("statement"),
        expiration_time=fields.get("expirationTime"),
        not_before=fields.get("notBefore"),
        request_id=fields.get("requestId"),
        resources=tuple(resources),
    )
    return message.text()


def _family(fields: dict[str, Any]) -> Family:
    chain = str(fields.get("chainId", ""))
    if fields.get("type") == "ed25519" or chain.startswith("solana"):
        return Family.SOLANA
    return Family.EVM


def _chain_reference(value: object, family: Family) -> str:
    """The bare chain reference of a JSON `chainId` (`8453`, `"eip155:8453"`, `"solana:…"`)."""
    if family is Family.EVM:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return str(value)
        if isinstance(value, str):
            reference = value.removeprefix("eip155:")
            if reference.isascii() and reference.isdigit():
                return str(int(reference))
    elif isinstance(value, str):
        reference = value.removeprefix("solana:")
        if _SOLANA_REFERENCE.match(reference):
            return reference
    raise SignInRejected("X402_SIGN_IN_INVALID_CHAIN_ID")


def _check_address(message: SignInMessage, address: str) -> None:
    same = (
        address.lower() == message.address.lower()
        if message.family is Family.EVM
        else address == message.address
    )
    if not same:
        raise SignInRejected("X402_SIGN_IN_ADDRESS_MISMATCH")


def _check_chain(message: SignInMessage, json_chain: object, policy: SignInPolicy) -> str:
    """The message's chain reference, once it is supported and agrees with the JSON `chainId`."""
    claimed = None if json_chain is None else _chain_reference(json_chain, message.family)
    if message.family is Family.EVM:
        # EIP-4361 makes the line mandatory; a message without it is read as mainnet (1).
        chain = message.chain_id or "1"
        supported = chain.isdigit() and int(chain) in policy.evm_chain_ids
    else:
        chain = (message.chain_id or "").removeprefix("solana:")
        supported = chain in policy.solana_chains
    if not supported:
        raise SignInRejected("X402_SIGN_IN_UNSUPPORTED_CHAIN")
    if claimed is not None and claimed != str(int(chain) if chain.isdigit() else chain):
        raise SignInRejected("X402_SIGN_IN_CHAIN_MISMATCH")
    return chain


def _check_times(message: SignInMessage, timestamp: object, now: datetime) -> datetime:
    issued_at = parse_time(message.issued_at)
    if now - issued_at > MAX_AGE:
        raise SignInRejected("X402_SIGN_IN_EXPIRED")
    if issued_at - now > MAX_FUTURE_SKEW:
        raise SignInRejected("X402_SIGN_IN_FUTURE_TIMESTAMP")
    if message.expiration_time is not None and parse_time(message.expiration_time) <= now:
        raise SignInRejected("X402_SIGN_IN_EXPIRED")
    if message.not_before is not None and parse_time(message.not_before) > now:
        raise SignInRejected("X402_SIGN_IN_NOT_BEFORE")
    if timestamp is not None:
        if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
            raise SignInRejected("X402_SIGN_IN_INVALID_PAYLOAD")
        skew = abs(timestamp / 1000 - issued_at.timestamp())
        if skew > MAX_TIMESTAMP_SKEW.total_seconds():
            raise SignInRejected("X402_SIGN_IN_TIMESTAMP_MISMATCH")
    return issued_at


def _check_evm_signature(
    text: str, address: str, signature: str, chain_id: int, policy: SignInPolicy
) -> None:
    """EIP-191 recovery for a key-held account, else EIP-1271 through the operator's verifier."""
    try:
        signer = Account.recover_message(encode_defunct(text=text), signature=signature)
    except Exception:  # any malformed signature simply does not come from this key
        signer = None
    if signer is not None and signer.lower() == address.lower():
        return
    if policy.contract_wallets is None:
        raise SignInRejected("X402_SIGN_IN_INVALID_SIGNATURE")
    try:
        accepted = policy.contract_wallets.is_valid_signature(
            address=address,
            chain_id=chain_id,
            message_hash=bytes(defunct_hash_message(text=text)),
            signature=bytes.fromhex(signature.removeprefix("0x")),
        )
    except Exception:
        raise SignInRejected("X402_SIGN_IN_INVALID_WALLET") from None
    if not accepted:
        raise SignInRejected("X402_SIGN_IN_INVALID_SIGNATURE")


def _check_solana_signature(text: str, address: str, signature: str) -> None:
    """Ed25519 over the message bytes; the signature may be base58 or base64."""
    try:
        public_key = base58.b58decode(address)
    except ValueError:
        raise SignInRejected("X402_SIGN_IN_INVALID_WALLET") from None
    if len(public_key) != 32:
        raise SignInRejected("X402_SIGN_IN_INVALID_WALLET")
    raw = _signature_bytes(signature)
    if raw is None:
        raise SignInRejected("X402_SIGN_IN_INVALID_SIGNATURE")
    try:
        VerifyKey(public_key).verify(text.encode("utf-8"), raw)
    except (BadSignatureError, ValueError):
        raise SignInRejected("X402_SIGN_IN_INVALID_SIGNATURE") from None


def _signature_bytes(signature: str) -> bytes | None:
    for decode in (base58.b58decode, lambda s: base64.b64decode(s, validate=True)):
        try:
            raw = decode(signature)
        except ValueError:
            continue
        if len(raw) == 64:
            return raw
    return None
