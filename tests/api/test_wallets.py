"""A client with only a wallet discovers how to pay, pays with x402, and gets its video; the
wallet rules of spec §2.1 (precedence, the three 402s, the concurrency cap) hold."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from x402.http import decode_payment_required_header, decode_payment_response_header

from tests.conftest import RETRIEVE_POLL_S, Env, wait_until
from tests.media_files import duration_s
from tests.wallets import DOMAIN, RECEIVER, EvmWallet, SolanaWallet, encode, fund, wallet_settings
from videoqueue.api.app import create_app
from videoqueue.billing.models import Account, AccountKind, LedgerEntry, LedgerKind
from videoqueue.billing.wallet_models import WalletRequest
from videoqueue.billing.wallets import acquire_request_slot
from videoqueue.clock import SystemClock
from videoqueue.settings import Settings
from videoqueue.workers import Supervisor

MODEL = "wan-2.5-preview-text-to-video"
CHEAP = {"model": MODEL, "prompt": "A wallet-paid kite", "duration": "5s", "resolution": "480p"}
DEAR = {"model": MODEL, "prompt": "x", "duration": "10s", "resolution": "1080p"}  # $1.50


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return wallet_settings(tmp_path)


def signed_post(
    env: Env, path: str, body: Any, wallet: EvmWallet | SolanaWallet, **headers: str
) -> Any:
    """POST with a freshly signed SIGN-IN-WITH-X header (every request needs its own)."""
    return env.client.post(
        f"/api/v1{path}", json=body, headers={"SIGN-IN-WITH-X": wallet.header(DOMAIN), **headers}
    )


def decoded(header: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(base64.b64decode(header))
    return value


def test_a_wallet_discovers_pays_and_downloads_its_video(env: Env, workers: Supervisor) -> None:
    wallet = EvmWallet()
    # 1. No credentials: the discovery body, priced rails and a sign-in challenge.
    anonymous = env.post("/video/queue", CHEAP)
    assert anonymous.status_code == 402
    discovery = anonymous.json()
    assert discovery["error"] == "Authentication required"
    assert discovery["accepts"][0]["payTo"] == RECEIVER
    assert discovery["accepts"][0]["amount"] == "10000000"
    assert discovery["extensions"]["sign-in-with-x"]["info"]["domain"] == "127.0.0.1"
    assert discovery["authOptions"]["x402Wallet"]["topUp"] == "POST /api/v1/x402/top-up"
    required = decode_payment_required_header(anonymous.headers["PAYMENT-REQUIRED"])
    assert required.accepts[0].pay_to == RECEIVER
    # 2. Signed in, but no credit: (b), with top-up instructions.
    broke = signed_post(env, "/video/queue", CHEAP, wallet)
    assert broke.status_code == 402
    assert broke.json()["code"] == "PAYMENT_REQUIRED"
    assert broke.json()["currentBalanceUsd"] == 0
    assert broke.json()["topUpInstructions"]["receiverWallet"] == RECEIVER
    assert "PAYMENT-REQUIRED" in broke.headers
    # 3. Top up $5 with the x402 client.
    paid = wallet.top_up(env.client)
    assert paid.status_code == 200, paid.text
    data = paid.json()["data"]
    assert data["walletAddress"] == wallet.address.lower()
    assert data["amountCredited"] == 5 and data["newBalance"] == 5
    assert data["paymentId"].startswith("x402-")
    settlement = decode_payment_response_header(paid.headers["PAYMENT-RESPONSE"])
    assert settlement.success and settlement.network == "eip155:8453"
    assert settlement.payer == wallet.address.lower()
    # 4. Queue and download, each request freshly signed.
    queued = signed_post(env, "/video/queue", CHEAP, wallet)
    assert queued.status_code == 200, queued.text
    assert queued.headers["X-Balance-Remaining"] == "4.750000"
    ref = {"model": MODEL, "queue_id": queued.json()["queue_id"]}

    def mp4() -> bytes | None:
        response = signed_post(env, "/video/retrieve", ref, wallet)
        assert response.status_code == 200, response.text
        return response.content if response.headers["content-type"] == "video/mp4" else None

    data_mp4 = wait_until(mp4, timeout=90, interval=RETRIEVE_POLL_S)
    assert abs(duration_s(data_mp4) - 5.0) < 0.1


def test_first_sign_in_makes_a_wallet_account_with_a_lower_case_address(env: Env) -> None:
    wallet = EvmWallet()
    signed_post(env, "/video/retrieve", {"model": MODEL, "queue_id": "x"}, wallet)
    signed_post(env, "/video/retrieve", {"model": MODEL, "queue_id": "x"}, wallet)
    with env.db.transaction() as session:
        accounts = list(
            session.scalars(select(Account).where(Account.wallet_address == wallet.address.lower()))
        )
    assert len(accounts) == 1 and accounts[0].kind == AccountKind.WALLET


def test_a_replayed_sign_in_header_is_refused_by_every_api_process(env: Env) -> None:
    wallet = EvmWallet()
    fund(env, wallet, "1")
    header = {"SIGN-IN-WITH-X": wallet.header(DOMAIN)}
    ref = {"model": MODEL, "queue_id": "missing"}
    first = env.client.post("/api/v1/video/retrieve", json=ref, headers=header)
    assert first.status_code == 404
    again = env.client.post("/api/v1/video/retrieve", json=ref, headers=header)
    assert again.status_code == 401
    assert again.json()["code"] == "X402_SIGN_IN_NONCE_REUSED"
    with TestClient(create_app(env.settings)) as other:  # another API process, same database
        elsewhere = other.post("/api/v1/video/retrieve", json=ref, headers=header)
    assert elsewhere.json()["code"] == "X402_SIGN_IN_NONCE_REUSED"


def test_a_nonce_is_spent_even_when_the_request_is_refused_for_credit(env: Env) -> None:
    wallet = EvmWallet()
    header = {"SIGN-IN-WITH-X": wallet.header(DOMAIN)}
    assert env.post("/video/queue", CHEAP, headers=header).status_code == 402
    assert (
        env.post("/video/queue", CHEAP, headers=header).json()["code"]
        == "X402_SIGN_IN_NONCE_REUSED"
    )


def test_sign_in_wins_over_a_bearer_key(env: Env) -> None:
    wallet = EvmWallet()  # no credit, while the key's account has plenty
    key = env.make_key(balance_usd=100)
    response = env.post(
        "/video/queue", CHEAP, key, headers={"SIGN-IN-WITH-X": wallet.header(DOMAIN)}
    )
    assert response.status_code == 402
    assert response.json()["reason"] == "insufficient_balance"


def test_the_legacy_sign_in_header_is_accepted(env: Env) -> None:
    wallet = EvmWallet()
    fund(env, wallet, "2")
    response = env.post("/video/queue", CHEAP, headers={"X-Sign-In-With-X": wallet.header(DOMAIN)})
    assert response.status_code == 200, response.text


def test_a_solana_wallet_signs_in_and_spends(env: Env) -> None:
    wallet = SolanaWallet()
    fund(env, wallet, "2")
    response = signed_post(env, "/video/queue", CHEAP, wallet)
    assert response.status_code == 200, response.text
    assert response.headers["X-Balance-Remaining"] == "1.750000"


def test_credit_below_the_job_price_is_the_plain_insufficient_balance(env: Env) -> None:
    wallet = EvmWallet()
    fund(env, wallet, "0.50")
    response = signed_post(env, "/video/queue", DEAR, wallet)
    assert response.status_code == 402
    assert response.json() == {
        "error": "Insufficient USD or Diem balance to complete request. "
        "Visit https://venice.ai/settings/api to add credits."
    }
    assert response.headers["X-Balance-Remaining"] == "0.500000"


def test_credit_under_the_minimum_is_refused_on_every_inference_route(env: Env) -> None:
    wallet = EvmWallet()
    fund(env, wallet, "0.09")
    for path in ("/video/queue", "/video/retrieve", "/video/complete"):
        response = signed_post(env, path, {"model": MODEL, "queue_id": "x"}, wallet)
        assert response.status_code == 402
        assert response.json()["currentBalanceUsd"] == 0.09
        assert response.json()["minimumBalanceUsd"] == 0.1


def test_no_credentials_get_the_discovery_402_on_every_inference_route(env: Env) -> None:
    for path in ("/video/queue", "/video/retrieve", "/video/complete"):
        response = env.post(path, {"model": MODEL, "queue_id": "x"})
        assert response.status_code == 402
        assert response.json()["resource"]["url"] == f"http://127.0.0.1:8000/api/v1{path}"
        assert decoded(response.headers["PAYMENT-REQUIRED"])["x402Version"] == 2


def test_a_payment_header_on_an_inference_route_is_400(env: Env) -> None:
    key = env.make_key()
    for name in ("PAYMENT-SIGNATURE", "X-PAYMENT", "X-402-Payment"):
        response = env.post("/video/queue", CHEAP, key, headers={name: "e30="})
        assert response.status_code == 400
        assert response.json()["code"] == "PAYMENT_HEADER_NOT_ACCEPTED"


def _in_flight(env: Env, account_id: str) -> int:
    with env.db.transaction() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(WalletRequest)
                .where(WalletRequest.account_id == account_id)
            )
            or 0
        )


def test_a_sixth_concurrent_request_of_a_wallet_is_429(env: Env) -> None:
    wallet = EvmWallet()
    account_id = fund(env, wallet, "2")
    ref = {"model": MODEL, "queue_id": "x"}
    assert signed_post(env, "/video/retrieve", ref, wallet).status_code == 404
    assert _in_flight(env, account_id) == 0, "a finished request frees its slot"
    slots = []
    with env.db.transaction() as session:  # five requests in flight, in other API processes
        for _ in range(5):
            slots.append(
                acquire_request_slot(
                    session, account_id=account_id, limit=5, ttl_seconds=60, clock=SystemClock()
                )
            )
    refused = signed_post(env, "/video/retrieve", ref, wallet)
    assert refused.status_code == 429
    assert refused.json() == {
        "error": "Too many concurrent requests",
        "code": "X402_CONCURRENCY_LIMIT",
    }
    with env.db.transaction() as session:
        session.delete(session.get(WalletRequest, slots[0]))
    assert signed_post(env, "/video/retrieve", ref, wallet).status_code == 404


def test_a_top_up_replayed_is_credited_once(env: Env) -> None:
    wallet = EvmWallet()
    offer = env.client.post("/api/v1/x402/top-up")
    payment = wallet.top_up_header(offer.headers["PAYMENT-REQUIRED"])
    first = env.client.post("/api/v1/x402/top-up", headers={"PAYMENT-SIGNATURE": payment})
    replay = env.client.post("/api/v1/x402/top-up", headers={"X-PAYMENT": payment})
    assert first.status_code == replay.status_code == 200
    assert replay.json()["data"]["paymentId"] == first.json()["data"]["paymentId"]
    assert replay.json()["data"]["newBalance"] == 5
    with env.db.transaction() as session:
        credits = list(
            session.scalars(
                select(LedgerEntry).where(
                    LedgerEntry.kind == LedgerKind.TOP_UP,
                    LedgerEntry.reference == first.json()["data"]["paymentId"],
                )
            )
        )
    assert len(credits) == 1 and credits[0].amount_micros == 5_000_000


def test_a_crafted_envelope_without_a_signature_is_invalid_payload(env: Env) -> None:
    wallet = EvmWallet()
    envelope = wallet.envelope(DOMAIN)
    del envelope["signature"]
    response = env.post("/video/queue", CHEAP, headers={"SIGN-IN-WITH-X": encode(envelope)})
    assert response.status_code == 401
    assert response.json()["code"] == "X402_SIGN_IN_INVALID_PAYLOAD"
