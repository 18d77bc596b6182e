"""Wallets made in the test with real keys: they write SIGN-IN-WITH-X headers the way wallet
clients do (EVM messages by the `siwe` package, Solana messages in the SIWS layout) and pay
x402 top-ups through the `x402` package's own client."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import base58
import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from nacl.signing import SigningKey
from siwe import SiweMessage
from x402 import x402ClientSync
from x402.http import decode_payment_required_header, encode_payment_signature_header
from x402.mechanisms.evm.exact import register_exact_evm_client
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import PaymentPayload, PaymentRequired

from tests.conftest import Env
from videoqueue.billing.ledger import top_up
from videoqueue.billing.wallets import wallet_account
from videoqueue.clock import SystemClock
from videoqueue.settings import Settings

SOLANA_MAINNET = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
STATEMENT = "Sign in to videoqueue"
DOMAIN = "127.0.0.1:8000"  # the default public host; the port is ignored
RECEIVER = "0x2670B922ef37C7Df47158725C0CC407b5382293F"


def wallet_settings(tmp_path: Path, **extra: Any) -> Settings:
    """The test settings, with x402 top-ups paid to RECEIVER (local facilitator)."""
    return Settings(
        data_dir=tmp_path / "data",
        lease_seconds=2.0,
        heartbeat_seconds=0.3,
        poll_seconds=0.05,
        default_average_execution_ms=5_000,
        x402_pay_to=RECEIVER,
        **extra,
    )


def stamp(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def encode(envelope: dict[str, Any]) -> str:
    """A SIGN-IN-WITH-X header value: base64 of the JSON envelope."""
    return base64.b64encode(json.dumps(envelope).encode()).decode()


@dataclass
class Fields:
    """What goes into a sign-in message (times relative to now unless given)."""

    domain: str
    chain_id: str
    nonce: str | None = field(default_factory=lambda: secrets.token_hex(8))
    issued_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    expiration_time: datetime | None = None
    not_before: datetime | None = None
    uri: str = "http://127.0.0.1:8000"
    statement: str | None = STATEMENT


class EvmWallet:
    """An externally owned Ethereum account signing EIP-4361 messages (EIP-191)."""

    def __init__(self, account: LocalAccount | None = None) -> None:
        self.account: LocalAccount = account or Account.create()

    @property
    def address(self) -> str:
        return str(self.account.address)

    def message(self, fields: Fields) -> str:
        text = SiweMessage(
            domain=fields.domain,
            address=self.address,
            uri=fields.uri,
            version="1",
            chain_id=int(fields.chain_id),
            nonce=fields.nonce or "placeholder0",
            issued_at=stamp(fields.issued_at),
            statement=fields.statement,
            expiration_time=stamp(fields.expiration_time) if fields.expiration_time else None,
            not_before=stamp(fields.not_before) if fields.not_before else None,
        ).prepare_message()
        if fields.nonce is None:
            text = text.replace("Nonce: placeholder0\n", "")
        return str(text)

    def message_for(self, domain: str, *, chain_id: str = "8453", **fields: Any) -> str:
        return self.message(Fields(domain=domain, chain_id=chain_id, **fields))

    def sign(self, text: str) -> str:
        signed = self.account.sign_message(encode_defunct(text=text))
        return "0x" + bytes(signed.signature).hex().removeprefix("0x")

    def envelope(
        self, domain: str, *, chain_id: str = "8453", message: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """`{address, message, signature, chainId}` for a fresh message (or the one given)."""
        text = (
            message
            if message is not None
            else self.message(Fields(domain=domain, chain_id=chain_id, **fields))
        )
        return {
            "address": self.address,
            "message": text,
            "signature": self.sign(text),
            "chainId": f"eip155:{chain_id}",
        }

    def header(self, domain: str, **fields: Any) -> str:
        return encode(self.envelope(domain, **fields))

    def top_up_header(self, payment_required_header: str) -> str:
        """A PAYMENT-SIGNATURE for the first rail of a PAYMENT-REQUIRED header, made by x402's
        client (an EIP-3009 authorization for the exact EVM scheme)."""
        required = decode_payment_required_header(payment_required_header)
        assert isinstance(required, PaymentRequired)
        client = register_exact_evm_client(x402ClientSync(), EthAccountSigner(self.account))
        client.set_spend_controls(False)  # the test decides what it signs (x402 caps at $1)
        payload = client.create_payment_payload(required)
        assert isinstance(payload, PaymentPayload)
        return encode_payment_signature_header(payload)

    def top_up(self, client: Any, *, header_name: str = "PAYMENT-SIGNATURE") -> httpx.Response:
        """Discover the rails, sign the minimum top-up, and pay it."""
        offer = client.post("/api/v1/x402/top-up")
        assert offer.status_code == 402, offer.text
        payment = self.top_up_header(offer.headers["PAYMENT-REQUIRED"])
        response: httpx.Response = client.post(
            "/api/v1/x402/top-up", headers={header_name: payment}
        )
        return response


class SolanaWallet:
    """An Ed25519 Solana keypair signing SIWS messages."""

    def __init__(self) -> None:
        self.key = SigningKey.generate()

    @property
    def address(self) -> str:
        return base58.b58encode(bytes(self.key.verify_key)).decode()

    def message(self, fields: Fields) -> str:
        lines = [
            f"{fields.domain} wants you to sign in with your Solana account:",
            self.address,
            "",
        ]
        if fields.statement:
            lines += [fields.statement, ""]
        lines += [f"URI: {fields.uri}", "Version: 1", f"Chain ID: {fields.chain_id}"]
        if fields.nonce is not None:
            lines.append(f"Nonce: {fields.nonce}")
        lines.append(f"Issued At: {stamp(fields.issued_at)}")
        if fields.expiration_time:
            lines.append(f"Expiration Time: {stamp(fields.expiration_time)}")
        return "\n".join(lines)

    def message_for(self, domain: str, *, chain_id: str = SOLANA_MAINNET, **fields: Any) -> str:
        return self.message(Fields(domain=domain, chain_id=chain_id, **fields))

    def sign(self, text: str, *, encoding: str = "base58") -> str:
        signature = self.key.sign(text.encode()).signature
        if encoding == "base64":
            return base64.b64encode(signature).decode()
        return base58.b58encode(signature).decode()

    def envelope(
        self,
        domain: str,
        *,
        chain_id: str = SOLANA_MAINNET,
        encoding: str = "base58",
        **fields: Any,
    ) -> dict[str, Any]:
        text = self.message(Fields(domain=domain, chain_id=chain_id, **fields))
        return {
            "address": self.address,
            "message": text,
            "signature": self.sign(text, encoding=encoding),
            "type": "ed25519",
            "chainId": f"solana:{SOLANA_MAINNET}",
        }

    def header(self, domain: str, **fields: Any) -> str:
        return encode(self.envelope(domain, **fields))


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def fund(env: Env, wallet: EvmWallet | SolanaWallet, usd: str) -> str:
    """Give the wallet's account credit directly (as an operator grant would)."""
    address = wallet.address.lower() if isinstance(wallet, EvmWallet) else wallet.address
    with env.db.transaction() as session:
        account = wallet_account(session, address, SystemClock())
        top_up(
            session,
            account_id=account.id,
            micros=int(Decimal(usd) * 1_000_000),
            clock=SystemClock(),
            note="test grant",
        )
        return account.id
