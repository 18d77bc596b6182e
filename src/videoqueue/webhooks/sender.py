"""Sending the outbox: each worker process runs a sender thread beside its job loop.

A sender claims one due delivery at a time under a lease, so two senders never send the same
one at once and one whose process died is sent by another once its lease lapses. Each
attempt checks the URL's addresses again and connects to a checked one itself; it is signed
at the time it is sent, with the account's secret of that moment. A 2xx answer delivers it;
any other answer, a timeout or a failed connection is recorded and tried again after the next
delay of the schedule, and after the last one the delivery is given up.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from videoqueue import metrics
from videoqueue.clock import Clock
from videoqueue.db.session import Database
from videoqueue.media.fetch import Resolver, pinned, resolve_addresses
from videoqueue.webhooks import store
from videoqueue.webhooks.guard import WebhookUrlRefused, webhook_addresses
from videoqueue.webhooks.models import DeliveryState
from videoqueue.webhooks.signing import signed_headers
from videoqueue.webhooks.store import DueDelivery
from videoqueue.webhooks.terms import WebhookTerms

log = logging.getLogger(__name__)

USER_AGENT = "videoqueue-webhooks"


@dataclass(frozen=True)
class AttemptResult:
    sent_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender:
    """Sends due deliveries, one at a time, until stopped."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        terms: WebhookTerms,
        worker_id: str,
        transport: httpx.BaseTransport | None = None,
        resolve: Resolver = resolve_addresses,
    ) -> None:
        self.db = db
        self.clock = clock
        self.terms = terms
        self.worker_id = worker_id
        self.resolve = resolve
        self._client = httpx.Client(
            transport=transport,
            timeout=httpx.Timeout(terms.timeout_s),
            trust_env=False,
            follow_redirects=False,
        )
        self._wake = threading.Event()

    def wake(self) -> None:
        """Look for due deliveries now (a job just ended), not at the next poll."""
        self._wake.set()

    def start(self, stop: threading.Event) -> threading.Thread:
        """Send in a daemon thread until `stop` is set."""
        thread = threading.Thread(
            target=self._run, args=(stop,), daemon=True, name="webhook-sender"
        )
        thread.start()
        return thread

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.send_due(stop)
            except Exception:
                log.exception("webhook sender error")
            self._wake.wait(self.terms.poll_s)
            self._wake.clear()
        self._client.close()

    def send_due(self, stop: threading.Event | None = None) -> int:
        """Send every delivery due now, one after another; how many were attempted."""
        sent = 0
        while stop is None or not stop.is_set():
            with self.db.read() as session:
                if not store.any_due(session, now=self.clock.now()):
                    break
            with self.db.transaction() as session:
                due = store.claim_due(
                    session,
                    worker_id=self.worker_id,
                    now=self.clock.now(),
                    lease_seconds=self.terms.lease_s,
                )
            if due is None:
                break
            self._settle(due, self._post(due))
            sent += 1
        return sent

    def _post(self, due: DueDelivery) -> AttemptResult:
        sent_at, started = self.clock.now(), time.monotonic()

        def result(status_code: int | None, error: str | None) -> AttemptResult:
            duration_ms = int((time.monotonic() - started) * 1000)
            return AttemptResult(sent_at, status_code, error, duration_ms)

        if due.secret is None:
            return result(None, "the account has no signing secret")
        try:
            addresses = webhook_addresses(due.url, self.terms.policy, self.resolve)
        except WebhookUrlRefused as exc:
            return result(None, exc.message)
        url = httpx.URL(due.url)
        headers = {
            **signed_headers(due.secret, msg_id=due.id, sent_at=sent_at, body=due.body),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        for ip in addresses:
            target, host, extensions = pinned(url, ip)
            request = self._client.build_request(
                "POST",
                target,
                headers={**headers, **host},
                content=due.body.encode(),
                extensions=extensions,
            )
            try:
                response = self._client.send(request, stream=True)
            except httpx.ConnectError:
                continue  # the next checked address, if any
            except httpx.TimeoutException:
                return result(None, f"timed out after {self.terms.timeout_s:g} s")
            except httpx.HTTPError as exc:
                return result(None, f"failed: {type(exc).__name__}")
            response.close()  # only the status counts: the body is never read
            code = response.status_code
            return result(code, None if 200 <= code < 300 else f"answered HTTP {code}")
        return result(None, "could not connect")

    def _settle(self, due: DueDelivery, result: AttemptResult) -> None:
        now = self.clock.now()
        delays = self.terms.retry_delays_s
        if result.delivered:
            state, next_at, outcome = DeliveryState.DELIVERED, None, "delivered"
        elif due.attempts > len(delays):
            state, next_at, outcome = DeliveryState.FAILED, None, "given_up"
        else:
            delay = timedelta(seconds=delays[due.attempts - 1])
            state, next_at, outcome = DeliveryState.PENDING, now + delay, "retrying"
        with self.db.transaction() as session:
            store.record_attempt(
                session,
                delivery_id=due.id,
                attempted_at=result.sent_at,
                status_code=result.status_code,
                error=result.error,
                duration_ms=result.duration_ms,
            )
            kept = store.settle(
                session,
                delivery_id=due.id,
                worker_id=self.worker_id,
                state=state,
                next_attempt_at=next_at,
                now=now,
            )
        metrics.webhook_attempted(outcome)
        if not kept:
            log.warning("webhook %s: its lease lapsed while it was sent", due.id)
        elif state == DeliveryState.FAILED:
            log.warning("webhook %s given up after %d attempts", due.id, due.attempts)
