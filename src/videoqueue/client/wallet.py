"""Wallet credentials as an `httpx.Auth` flow: a freshly signed `SIGN-IN-WITH-X` header on every
request (EIP-4361 message, EIP-191 signature), and, when allowed, an x402 top-up paid on the
spot when the server answers that the wallet's credit is too low."""

from __future__ import annotations

import base64
import json
import logging
import secrets
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import httpx

# eth_account and x402 load only when a wallet signs: `videoqueue` starts without them.
if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

log = logging.getLogger(__name__)

SIGN_IN_HEADER = "SIGN-IN-WITH-X"
PAYMENT_HEADER = "PAYMENT-SIGNATURE"
BASE_CHAIN_ID = 8453
MESSAGE_LIFETIME = timedelta(minutes=4)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class WalletAuth(httpx.Auth):
    """Sign in with an Ethereum account on every request.

    With `top_up_url` and `max_top_up_usd`, a `402` with code `PAYMENT_REQUIRED` (signed in,
    credit under the server's minimum) is answered by paying the top-up the server offers at
    `top_up_url` (x402, USDC on Base; never more than `max_top_up_usd`), then sending the
    request again with a new sign-in.
    """

    requires_response_body = True

    def __init__(
        self,
        account: LocalAccount,
        *,
        top_up_url: str | None = None,
        max_top_up_usd: Decimal | str | None = None,
        domain: str | None = None,
        chain_id: int = BASE_CHAIN_ID,
        statement: str = "Sign in to Venice AI",
    ) -> None:
        """`domain` is what the messages sign in to: by default each request's host (and
        port); name the server's public host when it is reached by another name."""
        self.account = account
        self.domain = domain
        self.top_up_url = top_up_url
        self.max_top_up_usd = None if max_top_up_usd is None else Decimal(max_top_up_usd)
        self.chain_id = chain_id
        self.statement = statement

    def message(self, url: httpx.URL, now: datetime) -> str:
        """The EIP-4361 text for a request to `url`."""
        domain = self.domain or (url.host if url.port is None else f"{url.host}:{url.port}")
        return "\n".join(
            [
                f"{domain} wants you to sign in with your Ethereum account:",
                str(self.account.address),
                "",
                self.statement,
                "",
                f"URI: {url.scheme}://{domain}",
                "Version: 1",
                f"Chain ID: {self.chain_id}",
                f"Nonce: {secrets.token_hex(8)}",
                f"Issued At: {_stamp(now)}",
                f"Expiration Time: {_stamp(now + MESSAGE_LIFETIME)}",
            ]
        )

    def header(self, url: httpx.URL) -> str:
        """A `SIGN-IN-WITH-X` value for one request (nonces are single use)."""
        from eth_account.messages import encode_defunct

        text = self.message(url, datetime.now(UTC))
        signature = self.account.sign_message(encode_defunct(text=text)).signature
        envelope = {
            "address": str(self.account.address),
            "message": text,
            "signature": "0x" + bytes(signature).hex().removeprefix("0x"),
            "chainId": f"eip155:{self.chain_id}",
        }
        return base64.b64encode(json.dumps(envelope).encode()).decode()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[SIGN_IN_HEADER] = self.header(request.url)
        response = yield request
        if not self._should_top_up(response):
            return
        from x402.schemas.errors import NoMatchingRequirementsError

        assert self.top_up_url is not None
        offer = yield httpx.Request("POST", self.top_up_url)
        if offer.status_code != 402 or "payment-required" not in offer.headers:
            return
        try:
            payment = self.payment(offer.headers["payment-required"])
        except NoMatchingRequirementsError as refused:
            # The offer is more than the caller allowed. httpx answers with the last response
            # of the flow, so ask again for the request's own 402 rather than the offer.
            log.warning("x402 top-up not paid: %s", refused)
            request.headers[SIGN_IN_HEADER] = self.header(request.url)
            yield request
            return
        paid = yield httpx.Request("POST", self.top_up_url, headers={PAYMENT_HEADER: payment})
        if paid.status_code != 200:
            return
        request.headers[SIGN_IN_HEADER] = self.header(request.url)
        yield request

    def _should_top_up(self, response: httpx.Response) -> bool:
        if response.status_code != 402 or self.top_up_url is None or not self.max_top_up_usd:
            return False
        try:
            body = response.json()
        except ValueError:
            return False
        return isinstance(body, dict) and body.get("code") == "PAYMENT_REQUIRED"

    def payment(self, payment_required_header: str) -> str:
        """A `PAYMENT-SIGNATURE` for the offer, signed by x402's client (an EIP-3009
        authorization for the exact EVM scheme); x402 refuses offers over our cap."""
        from x402 import x402ClientSync
        from x402.http import decode_payment_required_header, encode_payment_signature_header
        from x402.mechanisms.evm.exact import register_exact_evm_client
        from x402.mechanisms.evm.signers import EthAccountSigner

        client = register_exact_evm_client(x402ClientSync(), EthAccountSigner(self.account))
        client.set_spend_controls({"max_amount_per_payment": f"${self.max_top_up_usd}"})
        required = decode_payment_required_header(payment_required_header)
        return encode_payment_signature_header(client.create_payment_payload(required))
