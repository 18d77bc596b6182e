"""`POST /x402/top-up` (its error codes, the local and a remote facilitator) and the wallet's
`GET /x402/balance` and `GET /x402/transactions`."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from x402.http import FacilitatorConfig, decode_payment_response_header

from tests.conftest import Env, build_env
from tests.wallets import DOMAIN, RECEIVER, EvmWallet, SolanaWallet, fund, wallet_settings
from videoqueue.api.app import create_app
from videoqueue.api.policies import top_up_terms
from videoqueue.api.wallet_auth import WalletServices
from videoqueue.billing.facilitator import RemoteFacilitator
from videoqueue.billing.models import Account, LedgerEntry
from videoqueue.billing.payments import reserve_payment
from videoqueue.billing.x402 import read_payment
from videoqueue.clock import ManualClock, SystemClock
from videoqueue.settings import Settings

TOP_UP = "/api/v1/x402/top-up"
MODEL = "wan-2.5-preview-text-to-video"
CHEAP = {"model": MODEL, "prompt": "x", "duration": "5s", "resolution": "480p"}  # $0.25
USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return wallet_settings(tmp_path)


def _offer(client: TestClient, **changes: Any) -> str:
    """The server's PAYMENT-REQUIRED header, with its first rail changed as a client might."""
    header: str = client.post(TOP_UP).headers["PAYMENT-REQUIRED"]
    if not changes:
        return header
    required = json.loads(base64.b64decode(header))
    required["accepts"][0].update(changes)
    return base64.b64encode(json.dumps(required).encode()).decode()


def _tampered(payment: str, edit: Callable[[dict[str, Any]], None]) -> str:
    payload = json.loads(base64.b64decode(payment))
    edit(payload)
    return base64.b64encode(json.dumps(payload).encode()).decode()


def _pay(client: TestClient, payment: str) -> Any:
    return client.post(TOP_UP, headers={"PAYMENT-SIGNATURE": payment})


def test_without_a_payment_the_top_up_lists_the_rails_at_the_minimum(env: Env) -> None:
    response = env.client.post(TOP_UP, json={})
    assert response.status_code == 402
    assert response.json() == {
        "x402Version": 2,
        "accepts": [
            {
                "scheme": "exact",
                "network": "eip155:8453",
                "asset": USDC,
                "amount": "5000000",
                "payTo": RECEIVER,
                "maxTimeoutSeconds": 300,
                "extra": {"name": "USD Coin", "version": "2"},
            }
        ],
    }
    header = json.loads(base64.b64decode(response.headers["PAYMENT-REQUIRED"]))
    assert header["accepts"] == response.json()["accepts"]
    assert header["resource"]["url"] == "http://127.0.0.1:8000/api/v1/x402/top-up"


def test_top_ups_are_off_until_a_receiver_is_configured(tmp_path: Path) -> None:
    for env in build_env(Settings(data_dir=tmp_path / "data")):
        response = env.client.post(TOP_UP)
        assert response.status_code == 503
        assert response.json()["error"] == "X402_NOT_CONFIGURED"


def _signed(env: Env, wallet: EvmWallet, **changes: Any) -> str:
    return wallet.top_up_header(_offer(env.client, **changes))


PAYMENT_CASES: dict[str, tuple[Callable[[Env, EvmWallet], str], str]] = {
    "not base64 json": (lambda env, w: "???", "X402_INVALID_PAYMENT_FORMAT"),
    "nested past the recursion limit": (
        lambda env, w: base64.b64encode(b'{"a":' * 100_000).decode(),
        "X402_INVALID_PAYMENT_FORMAT",
    ),
    "x402 v1": (
        lambda env, w: _tampered(_signed(env, w), lambda p: p.update(x402Version=1)),
        "X402_INVALID_PAYMENT_FORMAT",
    ),
    "another scheme": (
        lambda env, w: _tampered(_signed(env, w), lambda p: p["accepted"].update(scheme="upto")),
        "X402_UNSUPPORTED_SCHEME",
    ),
    "another network": (
        lambda env, w: _signed(env, w, network="eip155:1"),
        "X402_UNSUPPORTED_NETWORK",
    ),
    "another token": (
        lambda env, w: _signed(env, w, asset=EvmWallet().address),
        "X402_UNSUPPORTED_TOKEN",
    ),
    "another receiver": (
        lambda env, w: _signed(env, w, payTo=EvmWallet().address),
        "X402_INVALID_PAYMENT_RECIPIENT",
    ),
    "receiver only in the authorization": (
        lambda env, w: _tampered(
            _signed(env, w), lambda p: p["payload"]["authorization"].update(to=EvmWallet().address)
        ),
        "X402_INVALID_PAYMENT_RECIPIENT",
    ),
    "$1": (lambda env, w: _signed(env, w, amount="1000000"), "X402_AMOUNT_TOO_LOW"),
    "$10,001": (lambda env, w: _signed(env, w, amount="10001000000"), "X402_AMOUNT_TOO_HIGH"),
    "amount not a number": (
        lambda env, w: _tampered(
            _signed(env, w), lambda p: p["payload"]["authorization"].update(value="5e6")
        ),
        "X402_INVALID_AMOUNT",
    ),
    "payer not an address": (
        lambda env, w: _tampered(
            _signed(env, w), lambda p: p["payload"]["authorization"].update(**{"from": "me"})
        ),
        "X402_INVALID_PAYMENT_PAYER",
    ),
    "amount raised after signing": (
        lambda env, w: _tampered(
            _signed(env, w), lambda p: p["payload"]["authorization"].update(value="6000000")
        ),
        "X402_INVALID_PAYMENT",
    ),
}


@pytest.mark.parametrize("case", list(PAYMENT_CASES))
def test_a_bad_payment_is_refused_with_its_code_and_credits_nothing(env: Env, case: str) -> None:
    make, code = PAYMENT_CASES[case]
    wallet = EvmWallet()
    response = _pay(env.client, make(env, wallet))
    assert response.status_code == 400
    assert response.json()["error"] == code
    assert isinstance(response.json()["message"], str)
    if code == "X402_INVALID_PAYMENT":
        assert response.json()["details"] == {"reason": "signature_mismatch"}
    with env.db.transaction() as session:
        assert (
            session.scalar(select(Account).where(Account.wallet_address == wallet.address.lower()))
            is None
        )


def test_an_expired_authorization_fails_verification(env: Env) -> None:
    wallet = EvmWallet()
    payment = _signed(env, wallet)
    later = ManualClock()
    later.advance(301)  # past validBefore (maxTimeoutSeconds after signing)
    with TestClient(create_app(env.settings, clock=later)) as client:
        response = _pay(client, payment)
    assert response.status_code == 400
    assert response.json()["error"] == "X402_PAYMENT_VERIFICATION_FAILED"
    assert "valid_before" in response.json()["details"]["reason"]
    assert _pay(env.client, payment).status_code == 200, "a failed payment may be retried"


def test_a_payment_being_settled_elsewhere_is_409(env: Env) -> None:
    payment = _signed(env, EvmWallet())
    with env.db.transaction() as session:
        read = read_payment(payment, top_up_terms(env.settings))
        assert reserve_payment(session, read, SystemClock()) is None
    response = _pay(env.client, payment)
    assert response.status_code == 409
    assert response.json()["error"] == "X402_PAYMENT_IN_PROGRESS"


def test_a_used_authorization_nonce_with_other_contents_is_refused(env: Env) -> None:
    wallet = EvmWallet()
    payment = _signed(env, wallet)
    assert _pay(env.client, payment).status_code == 200
    altered = _tampered(
        payment,
        lambda p: p["payload"]["authorization"].update(
            validBefore=str(int(p["payload"]["authorization"]["validBefore"]) + 1)
        ),
    )
    response = _pay(env.client, altered)
    assert response.status_code == 400
    assert response.json()["details"] == {"reason": "nonce_already_used"}


def test_more_than_the_minimum_is_credited_in_full_and_via_legacy_headers(env: Env) -> None:
    wallet = EvmWallet()
    payment = _signed(env, wallet, amount="12500000")
    response = env.client.post(TOP_UP, headers={"X-402-Payment": payment})
    assert response.status_code == 200
    assert response.json()["data"]["amountCredited"] == 12.5


class FakeFacilitator:
    """A remote facilitator on an httpx mock transport, answering /verify and /settle."""

    def __init__(self, verify: dict[str, Any], settle: dict[str, Any] | Exception) -> None:
        self.verify, self.settle = verify, settle
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append((request.url.path, body))
        if request.url.path.endswith("/verify"):
            return httpx.Response(200, json=self.verify)
        if isinstance(self.settle, Exception):
            raise self.settle
        return httpx.Response(200, json=self.settle)


@pytest.fixture
def remote(env: Env) -> Iterator[Callable[[FakeFacilitator], TestClient]]:
    """Another app on the same database, settling through x402's HTTP facilitator client."""
    with ExitStack() as stack:

        def make(fake: FakeFacilitator) -> TestClient:
            http = stack.enter_context(httpx.Client(transport=httpx.MockTransport(fake)))
            facilitator = RemoteFacilitator(
                FacilitatorConfig(url="http://facilitator.test", http_client=http)
            )
            app = create_app(env.settings, wallets=WalletServices(facilitator))
            return stack.enter_context(TestClient(app))

        yield make


def test_a_remote_facilitator_settles_on_chain_and_its_transaction_is_reported(
    env: Env, remote: Callable[[FakeFacilitator], TestClient]
) -> None:
    wallet = EvmWallet()
    payer = wallet.address
    fake = FakeFacilitator(
        {"isValid": True, "payer": payer},
        {"success": True, "transaction": "0xfeed", "network": "eip155:8453", "payer": payer},
    )
    client = remote(fake)
    response = _pay(client, _signed(env, wallet))
    assert response.status_code == 200
    assert (
        decode_payment_response_header(response.headers["PAYMENT-RESPONSE"]).transaction == "0xfeed"
    )
    paths = [path for path, _ in fake.requests]
    assert paths == ["/verify", "/settle"]
    requirements = fake.requests[0][1]["paymentRequirements"]
    assert requirements["payTo"] == RECEIVER and requirements["amount"] == "5000000"


@pytest.mark.parametrize(
    ("verify", "settle", "status", "code"),
    [
        (
            {"isValid": False, "invalidReason": "insufficient_funds"},
            {},
            400,
            "X402_PAYMENT_VERIFICATION_FAILED",
        ),
        (
            {"isValid": True},
            {
                "success": False,
                "errorReason": "transaction_failed",
                "transaction": "",
                "network": "eip155:8453",
            },
            402,
            "X402_SETTLEMENT_FAILED",
        ),
        ({"isValid": True}, httpx.ReadTimeout("slow chain"), 504, "X402_SETTLEMENT_TIMEOUT"),
    ],
)
def test_remote_facilitator_failures_credit_nothing(
    env: Env,
    remote: Callable[[FakeFacilitator], TestClient],
    verify: dict[str, Any],
    settle: Any,
    status: int,
    code: str,
) -> None:
    wallet = EvmWallet()
    response = _pay(remote(FakeFacilitator(verify, settle)), _signed(env, wallet))
    assert response.status_code == status
    assert response.json()["error"] == code
    with env.db.transaction() as session:
        assert (
            session.scalar(select(Account).where(Account.wallet_address == wallet.address.lower()))
            is None
        )


def test_a_configured_solana_rail_is_offered_with_a_remote_facilitator(tmp_path: Path) -> None:
    settings = wallet_settings(
        tmp_path,
        x402_facilitator_url="http://facilitator.test",
        x402_solana_pay_to=SolanaWallet().address,
        x402_solana_fee_payer=SolanaWallet().address,
    )
    for env in build_env(settings):
        networks = [a["network"] for a in env.client.post(TOP_UP).json()["accepts"]]
        assert networks == ["eip155:8453", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"]
        discovery = env.post("/video/queue", CHEAP).json()
        assert [a["network"] for a in discovery["accepts"]] == ["eip155:8453", "solana"]
        assert discovery["accepts"][1]["extra"]["feePayer"] == settings.x402_solana_fee_payer


def _get(env: Env, path: str, wallet: EvmWallet | SolanaWallet | None) -> Any:
    headers = {"SIGN-IN-WITH-X": wallet.header(DOMAIN)} if wallet else {}
    return env.client.get(f"/api/v1{path}", headers=headers)


def test_balance_is_for_the_signed_in_wallet_only(env: Env) -> None:
    wallet = EvmWallet()
    assert wallet.top_up(env.client).status_code == 200
    response = _get(env, f"/x402/balance/{wallet.address}", wallet)
    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "data": {
            "walletAddress": wallet.address.lower(),
            "balanceUsd": 5.0,
            "canConsume": True,
            "minimumTopUpUsd": 5.0,
            "suggestedTopUpUsd": 10.0,
        },
    }
    other = EvmWallet().address
    mismatch = _get(env, f"/x402/balance/{other}", wallet)
    assert mismatch.status_code == 403
    assert mismatch.json() == {
        "error": "You can only access balance for your own wallet",
        "code": "X402_WALLET_MISMATCH",
    }
    anonymous = _get(env, f"/x402/balance/{wallet.address}", None)
    assert anonymous.status_code == 402 and anonymous.json()["accepts"] == []
    bad = env.client.get(
        f"/api/v1/x402/balance/{wallet.address}", headers={"SIGN-IN-WITH-X": "bm9wZQ=="}
    )
    assert bad.status_code == 401
    assert bad.json() == {"error": "Invalid Sign-in-with-x signature"}
    invalid = _get(env, "/x402/balance/not-a-wallet", wallet)
    assert invalid.status_code == 400 and invalid.json()["error"] == "Invalid request parameters"


def test_a_solana_wallet_reads_its_balance(env: Env) -> None:
    wallet = SolanaWallet()
    fund(env, wallet, "0.05")
    data = _get(env, f"/x402/balance/{wallet.address}", wallet).json()["data"]
    assert data["walletAddress"] == wallet.address
    assert data["balanceUsd"] == 0.05 and data["canConsume"] is False


def test_transactions_list_the_ledger_newest_first_with_pages(env: Env) -> None:
    wallet = EvmWallet()
    assert wallet.top_up(env.client).status_code == 200
    queued = env.post("/video/queue", CHEAP, headers={"SIGN-IN-WITH-X": wallet.header(DOMAIN)})
    queue_id = queued.json()["queue_id"]
    cancelled = env.post(
        "/video/complete",
        {"model": MODEL, "queue_id": queue_id},
        headers={"SIGN-IN-WITH-X": wallet.header(DOMAIN)},
    )
    assert cancelled.status_code == 200  # cancelled while queued: refunded
    body = _get(env, f"/x402/transactions/{wallet.address}", wallet).json()
    data = body["data"]
    assert data["walletAddress"] == wallet.address.lower() and data["currentBalance"] == 5.0
    with env.db.transaction() as session:
        account = session.scalar(
            select(Account).where(Account.wallet_address == wallet.address.lower())
        )
        assert account is not None
        ledger = list(
            session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.account_id == account.id)
                .order_by(LedgerEntry.created_at.desc())
            )
        )
    assert [(t["id"], t["type"], t["amount"], t["balanceAfter"]) for t in data["transactions"]] == [
        (e.id, e.kind.value, e.amount_micros / 1e6, e.balance_after_micros / 1e6) for e in ledger
    ]
    assert [t["type"] for t in data["transactions"]] == ["REFUND", "CHARGE", "TOP_UP"]
    assert [t["requestId"] for t in data["transactions"]] == [queue_id, queue_id, None]
    assert data["transactions"][1]["modelId"] == MODEL
    assert data["transactions"][0]["createdAt"].endswith("Z")
    assert data["pagination"] == {"limit": 50, "offset": 0, "hasMore": False}
    page = _get(env, f"/x402/transactions/{wallet.address}?limit=2", wallet).json()["data"]
    assert len(page["transactions"]) == 2 and page["pagination"]["hasMore"] is True
    rest = _get(env, f"/x402/transactions/{wallet.address}?limit=2&offset=2", wallet).json()["data"]
    assert [t["type"] for t in rest["transactions"]] == ["TOP_UP"]
    assert rest["pagination"] == {"limit": 2, "offset": 2, "hasMore": False}


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "offset=-1", "limit=many"])
def test_bad_pagination_is_400(env: Env, query: str) -> None:
    wallet = EvmWallet()
    response = _get(env, f"/x402/transactions/{wallet.address}?{query}", wallet)
    assert response.status_code == 400
    assert response.json()["issues"][0]["path"] == [query.split("=")[0]]


def test_transactions_of_another_wallet_are_403(env: Env) -> None:
    response = _get(env, f"/x402/transactions/{EvmWallet().address}", EvmWallet())
    assert response.status_code == 403
    assert response.json()["error"] == "You can only access transactions for your own wallet"
