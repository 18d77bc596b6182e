"""`WalletAuth` against a real server: sign-in on every request, and an x402 top-up paid (to the
local facilitator) when the wallet's credit is too low, then the request sent again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from tests.accounts import balance
from tests.conftest import Env
from tests.wallets import EvmWallet, fund, wallet_settings
from videoqueue.billing.wallets import wallet_account
from videoqueue.client import (
    AsyncClient,
    AuthenticationFailed,
    Client,
    PaymentRequired,
    WalletAuth,
)
from videoqueue.clock import SystemClock
from videoqueue.settings import Settings

T2V = "wan-2.5-preview-text-to-video"
REQUEST = {"model": T2V, "prompt": "a kite", "duration": "5s", "resolution": "480p"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return wallet_settings(tmp_path)


def _account_of(env: Env, address: str) -> str:
    with env.db.transaction() as session:
        return wallet_account(session, address.lower(), SystemClock()).id


def test_a_funded_wallet_signs_in_afresh_on_every_request(env: Env, api_url: str) -> None:
    wallet = Account.create()
    account = fund(env, EvmWallet(wallet), "1")
    with Client(api_url, auth=WalletAuth(wallet)) as client:
        job = client.queue(**REQUEST)
        assert client.retrieve(job).status == "PROCESSING"
        assert client.retrieve(job).status == "PROCESSING"
    assert balance(env, account) == 1_000_000 - 250_000


def test_an_empty_wallet_without_a_top_up_allowance_is_payment_required(
    env: Env, api_url: str
) -> None:
    with (
        Client(api_url, auth=WalletAuth(Account.create())) as client,
        pytest.raises(PaymentRequired) as caught,
    ):
        client.queue(**REQUEST)
    assert caught.value.code == "PAYMENT_REQUIRED"
    assert caught.value.body["reason"] == "insufficient_balance"


def test_an_empty_wallet_tops_up_the_offered_minimum_and_queues(env: Env, api_url: str) -> None:
    wallet = Account.create()
    auth = WalletAuth(wallet, top_up_url=f"{api_url}/x402/top-up", max_top_up_usd=Decimal("5"))
    with Client(api_url, auth=auth) as client:
        job = client.queue(**REQUEST)
    assert job.model == T2V
    assert balance(env, _account_of(env, wallet.address)) == 5_000_000 - 250_000


def test_a_top_up_over_the_allowance_is_not_signed(env: Env, api_url: str) -> None:
    wallet = Account.create()
    auth = WalletAuth(wallet, top_up_url=f"{api_url}/x402/top-up", max_top_up_usd="1")
    with Client(api_url, auth=auth) as client, pytest.raises(PaymentRequired) as caught:
        client.queue(**REQUEST)
    assert caught.value.code == "PAYMENT_REQUIRED"
    assert balance(env, _account_of(env, wallet.address)) == 0


def test_the_async_client_takes_the_same_wallet_flow(env: Env, api_url: str) -> None:
    wallet = Account.create()
    auth = WalletAuth(wallet, top_up_url=f"{api_url}/x402/top-up", max_top_up_usd="5")

    async def scenario() -> str:
        async with AsyncClient(api_url, auth=auth) as client:
            job = await client.queue(**REQUEST)
            return (await client.retrieve(job)).status

    assert asyncio.run(scenario()) == "PROCESSING"
    assert balance(env, _account_of(env, wallet.address)) == 5_000_000 - 250_000


def test_a_sign_in_for_another_domain_is_refused_with_its_code(env: Env, api_url: str) -> None:
    wallet = Account.create()
    fund(env, EvmWallet(wallet), "1")
    auth = WalletAuth(wallet, domain="api.example.com")
    assert auth.message(httpx.URL(api_url), datetime.now(UTC)).startswith(
        "api.example.com wants you to sign in with your Ethereum account:\n" + wallet.address
    )
    with Client(api_url, auth=auth) as client, pytest.raises(AuthenticationFailed) as caught:
        client.queue(**REQUEST)
    assert caught.value.code == "X402_SIGN_IN_DOMAIN_MISMATCH"
