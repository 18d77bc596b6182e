"""Every rule of the SIGN-IN-WITH-X verification table (spec §2.3), each broken by a crafted
header and answered 401 with its code; and the forms of a valid header that pass."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import base58
import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from tests.conftest import Env
from tests.wallets import (
    DOMAIN,
    EvmWallet,
    SolanaWallet,
    encode,
    fund,
    minutes,
    stamp,
    wallet_settings,
)
from videoqueue.api.app import create_app
from videoqueue.api.wallet_auth import WalletServices
from videoqueue.billing.facilitator import LocalFacilitator
from videoqueue.clock import SystemClock
from videoqueue.settings import Settings

MODEL = "wan-2.5-preview-text-to-video"
REF = {"model": MODEL, "queue_id": "no-such-job"}


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return wallet_settings(tmp_path)


def _retrieve(client: TestClient, header: str, name: str = "SIGN-IN-WITH-X") -> Any:
    return client.post("/api/v1/video/retrieve", json=REF, headers={name: header})


def _resigned(wallet: EvmWallet, text: str) -> str:
    return encode({"address": wallet.address, "message": text, "signature": wallet.sign(text)})


def _evm(**fields: Any) -> Callable[[EvmWallet], str]:
    return lambda w: w.header(DOMAIN, **fields)


def _edited(edit: Callable[[dict[str, Any]], None], **fields: Any) -> Callable[[EvmWallet], str]:
    def make(wallet: EvmWallet) -> str:
        envelope = wallet.envelope(DOMAIN, **fields)
        edit(envelope)
        return encode(envelope)

    return make


def _without_chain_line(wallet: EvmWallet) -> str:
    text = wallet.envelope(DOMAIN)["message"]
    return _resigned(
        wallet, "\n".join(li for li in text.split("\n") if not li.startswith("Chain ID:"))
    )


def _bad_solana_key(_: EvmWallet) -> str:
    signer = SolanaWallet()
    short = base58.b58encode(b"\x01" * 31).decode()  # 31 bytes: not an Ed25519 public key
    text = signer.message_for(DOMAIN).replace(signer.address, short)
    return encode(
        {"address": short, "message": text, "signature": signer.sign(text), "type": "ed25519"}
    )


CASES: dict[str, tuple[Callable[[EvmWallet], str], str]] = {
    "not base64": (lambda w: "%%%not-base64%%%", "X402_SIGN_IN_PARSE_ERROR"),
    "not json": (lambda w: base64.b64encode(b"hello").decode(), "X402_SIGN_IN_PARSE_ERROR"),
    "json array": (lambda w: base64.b64encode(b"[1, 2]").decode(), "X402_SIGN_IN_PARSE_ERROR"),
    "nested past the recursion limit": (
        lambda w: base64.b64encode(b"[" * 100_000).decode(),
        "X402_SIGN_IN_PARSE_ERROR",
    ),
    "no signature": (_edited(lambda e: e.pop("signature")), "X402_SIGN_IN_INVALID_PAYLOAD"),
    "no message or fields": (_edited(lambda e: e.pop("message")), "X402_SIGN_IN_INVALID_PAYLOAD"),
    "not a sign-in message": (
        _edited(lambda e: e.update(message="hello")),
        "X402_SIGN_IN_INVALID_MESSAGE",
    ),
    "no nonce": (_evm(nonce=None), "X402_SIGN_IN_MISSING_NONCE"),
    "another address": (
        _edited(lambda e: e.update(address=EvmWallet().address)),
        "X402_SIGN_IN_ADDRESS_MISMATCH",
    ),
    "another domain": (lambda w: w.header("api.venice.ai"), "X402_SIGN_IN_DOMAIN_MISMATCH"),
    "mainnet": (_evm(chain_id="1"), "X402_SIGN_IN_UNSUPPORTED_CHAIN"),
    "no chain line": (_without_chain_line, "X402_SIGN_IN_UNSUPPORTED_CHAIN"),
    "malformed chainId": (
        _edited(lambda e: e.update(chainId="eip155:base")),
        "X402_SIGN_IN_INVALID_CHAIN_ID",
    ),
    "chainId disagrees": (_edited(lambda e: e.update(chainId=10)), "X402_SIGN_IN_CHAIN_MISMATCH"),
    "issued 6 min ago": (
        lambda w: w.header(DOMAIN, issued_at=now() - minutes(6)),
        "X402_SIGN_IN_EXPIRED",
    ),
    "expiration passed": (
        lambda w: w.header(
            DOMAIN, issued_at=now() - minutes(2), expiration_time=now() - minutes(1)
        ),
        "X402_SIGN_IN_EXPIRED",
    ),
    "issued in 2 min": (
        lambda w: w.header(DOMAIN, issued_at=now() + minutes(2)),
        "X402_SIGN_IN_FUTURE_TIMESTAMP",
    ),
    "not before later": (
        lambda w: w.header(DOMAIN, not_before=now() + minutes(1)),
        "X402_SIGN_IN_NOT_BEFORE",
    ),
    "timestamp a minute off": (
        _edited(lambda e: e.update(timestamp=int(now().timestamp() * 1000) - 60_000)),
        "X402_SIGN_IN_TIMESTAMP_MISMATCH",
    ),
    "signed by another key": (
        _edited(lambda e: e.update(signature=EvmWallet().sign(e["message"]))),
        "X402_SIGN_IN_INVALID_SIGNATURE",
    ),
    "garbage signature": (
        _edited(lambda e: e.update(signature="0x1234")),
        "X402_SIGN_IN_INVALID_SIGNATURE",
    ),
    "not an ed25519 key": (_bad_solana_key, "X402_SIGN_IN_INVALID_WALLET"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_crafted_header_is_refused_with_its_code(env: Env, case: str) -> None:
    make, code = CASES[case]
    response = _retrieve(env.client, make(EvmWallet()))
    assert response.status_code == 401
    assert response.json()["code"] == code
    assert isinstance(response.json()["error"], str) and response.json()["error"]


def test_the_timestamp_rule_is_within_30_seconds(env: Env) -> None:
    wallet = EvmWallet()
    fund(env, wallet, "1")
    issued = now()
    envelope = wallet.envelope(DOMAIN, issued_at=issued)
    envelope["timestamp"] = int(issued.timestamp() * 1000) + 20_000
    assert _retrieve(env.client, encode(envelope)).status_code == 404


def test_the_structured_form_is_verified_over_the_rebuilt_message(env: Env) -> None:
    wallet = EvmWallet()
    fund(env, wallet, "1")
    issued = now()
    # The client signs the EIP-4361 text whose Chain ID line holds the bare reference.
    text = wallet.message_for(DOMAIN, nonce="f00dfeed1234", issued_at=issued)
    fields = {
        "domain": DOMAIN,
        "address": wallet.address,
        "uri": "http://127.0.0.1:8000",
        "version": "1",
        "nonce": "f00dfeed1234",
        "issuedAt": stamp(issued),
        "statement": "Sign in to videoqueue",
        "chainId": "eip155:8453",
        "signature": wallet.sign(text),
    }
    assert _retrieve(env.client, encode(fields)).status_code == 404
    fields["nonce"] = "another0nonce"  # signed text no longer matches the fields
    assert _retrieve(env.client, encode(fields)).json()["code"] == "X402_SIGN_IN_INVALID_SIGNATURE"
    del fields["nonce"]
    assert _retrieve(env.client, encode(fields)).json()["code"] == "X402_SIGN_IN_MISSING_NONCE"


def test_solana_structured_form_and_base64_signatures_are_accepted(env: Env) -> None:
    wallet = SolanaWallet()
    fund(env, wallet, "1")
    assert _retrieve(env.client, wallet.header(DOMAIN, encoding="base64")).status_code == 404
    issued = now()
    text = wallet.message_for(DOMAIN, nonce="structured1", issued_at=issued)
    fields = {
        "domain": DOMAIN,
        "address": wallet.address,
        "uri": "http://127.0.0.1:8000",
        "version": "1",
        "nonce": "structured1",
        "issuedAt": stamp(issued),
        "statement": "Sign in to videoqueue",
        "type": "ed25519",
        "chainId": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp",
        "signature": wallet.sign(text),
    }
    assert _retrieve(env.client, encode(fields), "X-Sign-In-With-X").status_code == 404


def test_a_solana_address_is_compared_exactly(env: Env) -> None:
    wallet = SolanaWallet()
    envelope = wallet.envelope(DOMAIN)
    envelope["address"] = wallet.address.swapcase()
    assert _retrieve(env.client, encode(envelope)).json()["code"] == "X402_SIGN_IN_ADDRESS_MISMATCH"


def test_an_evm_address_is_compared_without_case(env: Env) -> None:
    wallet = EvmWallet()
    fund(env, wallet, "1")
    envelope = wallet.envelope(DOMAIN)
    envelope["address"] = wallet.address.lower()
    assert _retrieve(env.client, encode(envelope)).status_code == 404


class OwnerVerifier:
    """A stand-in for an on-chain EIP-1271 call: the contract accepts its owner's signatures."""

    def __init__(self, contract: str, owner: EvmWallet, *, fail: bool = False) -> None:
        self.contract, self.owner, self.fail = contract, owner, fail

    def is_valid_signature(
        self, *, address: str, chain_id: int, message_hash: bytes, signature: bytes
    ) -> bool:
        if self.fail:
            raise ConnectionError("no RPC")
        signer = Account._recover_hash(message_hash, signature=signature)
        return (
            address.lower() == self.contract.lower()
            and chain_id == 8453
            and signer == self.owner.address
        )


@pytest.fixture
def contract_client(env: Env) -> Iterator[Callable[..., TestClient]]:
    """Another app on the same database whose wallets have an EIP-1271 verifier."""
    with ExitStack() as stack:

        def make(verifier: OwnerVerifier) -> TestClient:
            services = WalletServices(LocalFacilitator(SystemClock()), contract_wallets=verifier)
            return stack.enter_context(TestClient(create_app(env.settings, wallets=services)))

        yield make


def test_a_contract_wallet_signs_in_through_the_eip1271_verifier(
    env: Env, contract_client: Callable[..., TestClient]
) -> None:
    owner, contract = EvmWallet(), EvmWallet()  # the contract's address; its key is unused
    fund(env, contract, "1")

    def header() -> str:
        text = contract.message_for(DOMAIN)
        return encode({"address": contract.address, "message": text, "signature": owner.sign(text)})

    assert _retrieve(env.client, header()).json()["code"] == "X402_SIGN_IN_INVALID_SIGNATURE"
    accepting = contract_client(OwnerVerifier(contract.address, owner))
    assert _retrieve(accepting, header()).status_code == 404
    unreachable = contract_client(OwnerVerifier(contract.address, owner, fail=True))
    response = _retrieve(unreachable, header())
    assert response.json() == {
        "error": "Sign-in-with-X authentication failed",
        "code": "X402_SIGN_IN_INVALID_WALLET",
    }


def test_accepted_domains_come_from_configuration_not_the_host_header(tmp_path: Path) -> None:
    from tests.conftest import build_env

    configured = wallet_settings(tmp_path, siwx_domains=["https://api.example.com"])
    for env in build_env(configured):
        wallet = EvmWallet()
        fund(env, wallet, "1")
        assert _retrieve(env.client, wallet.header("api.example.com")).status_code == 404
        spoofed = env.client.post(
            "/api/v1/video/retrieve",
            json=REF,
            headers={"Host": "evil.example", "SIGN-IN-WITH-X": wallet.header("evil.example")},
        )
        assert spoofed.json()["code"] == "X402_SIGN_IN_DOMAIN_MISMATCH"
        assert (
            _retrieve(env.client, wallet.header(DOMAIN)).json()["code"]
            == "X402_SIGN_IN_DOMAIN_MISMATCH"
        )
