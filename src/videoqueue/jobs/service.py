"""The jobs service: the one order flow every API dialect calls.

Submit, quote, retrieve, complete and discard take plain values and return plain values;
the routers only parse requests and render these results. The cheap refusals come first
(validation, prompt rules, an idempotent replay, a short balance), then the media work, then
one write transaction that charges and creates the job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from videoqueue import metrics
from videoqueue.billing.ledger import (
    KeyBudget,
    account_balance,
    charge,
    lock_account,
    refund,
    refuse_unaffordable,
)
from videoqueue.catalog.catalog import Catalog
from videoqueue.catalog.content_policy import ContentRule, check_prompt
from videoqueue.catalog.entry import MEDIA_FIELDS, ModelEntry
from videoqueue.catalog.media_intake import MediaIntake
from videoqueue.catalog.pricing import price_micros
from videoqueue.catalog.request import VideoRequest
from videoqueue.catalog.schema import present
from videoqueue.catalog.validation import validate_queue, validate_quote
from videoqueue.clock import Clock
from videoqueue.consent.flow import require_consent
from videoqueue.db.base import new_id
from videoqueue.db.session import Database
from videoqueue.delivery import store as link_store
from videoqueue.delivery.links import LinkTerms
from videoqueue.errors import VideoqueueError
from videoqueue.jobs import idempotency, store
from videoqueue.jobs.failure import Failure
from videoqueue.jobs.idempotency import IdempotencyKey, IdempotencyKeyTaken
from videoqueue.jobs.models import Job
from videoqueue.jobs.progress import JobStatus, ended_status
from videoqueue.jobs.states import GONE, JobState
from videoqueue.jobs.submit import StoredMedia, job_spec, store_media
from videoqueue.storage.base import ObjectNotFound, Storage
from videoqueue.storage.layout import job_prefix
from videoqueue.webhooks import store as webhook_store
from videoqueue.webhooks.guard import webhook_addresses

PRICED_BY_MEDIA = ("video_url", "reference_video_urls")
"""Media fields whose probed length or size enters the price; no other media does."""


_POLLED = store.polled_job_query(link_store.has_link(Job.id))
"""A retrieve's one read: the job, and whether a download link serves it."""


class PayingCaller(Protocol):
    """Who a queue request comes from: who pays for it, and its count against the caller's
    request limits. Whichever the service asks first looks the caller up."""

    def payer(self) -> Payer:
        """Who pays, looked up in a read of its own unless `admit` has looked it up."""
        ...

    def admit(self, session: Session) -> Payer:
        """Count the request in `session`, looking up who pays there unless that is known;
        raises to refuse it. The count stands if that transaction commits."""
        ...


class MediaNotFound(ObjectNotFound):
    """Media could not be found. Request may be invalid, expired, or deleted."""

    code = "MEDIA_NOT_FOUND"


def _of_model(job: Job | None, model: str) -> Job:
    """The account's job if it is one of `model`'s; else `MediaNotFound`, as for no job."""
    if job is None or job.model != model:
        raise MediaNotFound()
    return job


class WebhookSecretRequired(VideoqueueError):
    """webhook_url needs the account's signing secret first: create it with POST /api/v1/webhooks/secret"""  # noqa: E501 - the docstring is the message, on one line

    status = 400
    code = "WEBHOOK_SECRET_REQUIRED"


class _Replayed(Exception):
    """An idempotency key's earlier answer, found once the account is locked: raised so that
    what the transaction wrote before (the new job) rolls back."""

    def __init__(self, accepted: Accepted) -> None:
        super().__init__()
        self.accepted = accepted


class JobAlreadyEnded(VideoqueueError):
    """The job has already ended: there is nothing to cancel"""

    status = 409


@dataclass(frozen=True)
class Payer:
    """Who a job is charged to: the account, and the API key's spend limit when by key."""

    account_id: str
    key: KeyBudget | None = None


@dataclass(frozen=True)
class JobTerms:
    """The operator's rules for accepting and reporting jobs."""

    max_attempts: int = 3
    idempotency_ttl: timedelta = timedelta(hours=24)
    content_rules: tuple[ContentRule, ...] = ()
    default_average_ms: int = 60_000
    retention: timedelta | None = None
    """How long an ended job's media is kept (None: until the client deletes it)."""


@dataclass(frozen=True)
class Accepted:
    """A queued job (or the replay of one): what the client is told."""

    model: str
    queue_id: str
    download_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"model": self.model, "queue_id": self.queue_id}
        if self.download_url is not None:
            answer["download_url"] = self.download_url
        return answer

    @classmethod
    def from_json(cls, answer: Mapping[str, Any]) -> Accepted:
        return cls(answer["model"], answer["queue_id"], answer.get("download_url"))


@dataclass(frozen=True)
class Pending:
    """Still queued or running; `queue_position` counts the jobs claimed before a queued one
    (None once it runs)."""

    average_ms: int
    elapsed_ms: int
    progress: float
    queue_position: int | None = None


@dataclass(frozen=True)
class Failed:
    failure: Failure


@dataclass(frozen=True)
class Ready:
    """Finished: the MP4 is at `output_key`; delete the job's media once it is sent, if asked."""

    job_id: str
    output_key: str
    delete_media: bool


@dataclass(frozen=True)
class ServedByLink:
    """Finished, but its video is served only at its `download_url`."""

    average_ms: int
    elapsed_ms: int


Retrieved = Pending | Failed | Ready | ServedByLink


def quote_probes_source(entry: ModelEntry, body: Mapping[str, Any]) -> bool:
    """Whether quoting `body` for `entry` fetches media: an upscale's `video_url`, probed for
    its size and length. Every other quote is validation and arithmetic."""
    return entry.upscale is not None and isinstance(body.get("video_url"), str)


def _elapsed_ms(since: datetime, until: datetime) -> int:
    return max(0, int((until - since).total_seconds() * 1000))


def queue_position(session: Session, job: Job, now: datetime) -> int | None:
    """A queued (or lease-lapsed) job's place in the claim order; None for one running."""
    lapsed = job.lease_expires_at is not None and job.lease_expires_at < now
    if job.state == JobState.RUNNING and not lapsed:
        return None
    return store.queue_position(session, job, now=now)


class JobService:
    """Submit, price, poll and end jobs over one database, storage and catalogue."""

    def __init__(
        self,
        *,
        db: Database,
        storage: Storage,
        catalog: Catalog,
        clock: Clock,
        intake: MediaIntake,
        links: LinkTerms,
        terms: JobTerms,
    ) -> None:
        self.db = db
        self.storage = storage
        self.catalog = catalog
        self.clock = clock
        self.intake = intake
        self.links = links
        self.terms = terms

    def quote(self, body: Mapping[str, Any]) -> int:
        """The price in micro-USD that `submit` would charge for this request shape."""
        request = validate_quote(self.catalog, body, now=self.clock.now())
        entry = self.catalog.get(request.model)
        source = None
        if quote_probes_source(entry, body):
            family = self.catalog.family(entry)
            source = self.intake.probe_source(entry, family, request, body["video_url"])
        return price_micros(entry, request, source)

    def may_wait_on_network(self, body: Mapping[str, Any]) -> bool:
        """Whether submitting `body` may wait on the network (media to fetch and store, a
        webhook address to resolve), not only on the database."""
        return present(body, "webhook_url") or any(present(body, k) for k in MEDIA_FIELDS)

    def submit(
        self, body: Mapping[str, Any], caller: PayingCaller, idem: IdempotencyKey | None = None
    ) -> Accepted:
        """Validate, price, charge and queue a generation; a replayed key answers as before.

        Raises the validation, prompt, webhook, media, consent, balance and idempotency errors,
        each before anything is charged. The request is counted (`caller.admit`) first in the
        transaction that charges, or, for a request with media, in one of its own before any
        media work; a replay, or a request refused before either, is never counted. A request
        without media, webhook or idempotency key looks its caller up in that same transaction.
        """
        # 1. A replayed key answers as the first request did, whatever has changed since.
        ttl = self.terms.idempotency_ttl
        if idem is not None:
            account_id = caller.payer().account_id
            with self.db.read() as session:
                answer = idempotency.replay(session, account_id, idem, ttl, self.clock)
            if answer is not None:
                return Accepted.from_json(answer)

        # 2. Check the request against its model and the operator's prompt rules, and that
        # its webhook, if any, can be signed and sent.
        request = validate_queue(self.catalog, body, now=self.clock.now())
        entry = self.catalog.get(request.model)
        check_prompt(request.prompt, self.terms.content_rules)
        if request.webhook_url is not None:
            self._check_webhook(caller.payer().account_id, request.webhook_url)

        # 3. A request without media needs nothing else before its one transaction.
        if not request.media:
            return self._accept(request, entry, StoredMedia(job_id=new_id()), caller, idem)

        # 4. Count the request, then, where media does not set the price, refuse a short
        # balance: neither refusal fetches a URL.
        with self.db.transaction() as session:
            payer = caller.admit(session)
        if not any(name in request.media for name in PRICED_BY_MEDIA):
            with self.db.read() as session:
                self._refuse_unaffordable(session, payer, price_micros(entry, request))

        # 5. Fetch, decode, check and store the media under the new job's id.
        load, inspector = self.intake.for_model(entry, self.catalog.family(entry))
        stored = store_media(
            request, entry, job_id=new_id(), storage=self.storage, load=load, inspector=inspector
        )

        # 6. Charge and create the job in one transaction, or delete what was stored.
        try:
            accepted = self._accept(request, entry, stored, caller, idem)
        except BaseException:
            self.storage.delete_prefix(job_prefix(stored.job_id))
            raise
        if accepted.queue_id != stored.job_id:  # a replay: the stored copy is not needed
            self.storage.delete_prefix(job_prefix(stored.job_id))
        return accepted

    def _check_webhook(self, account_id: str, url: str) -> None:
        """Refuse a webhook the account cannot be sent: no secret to sign it with, or an
        address the media URLs' guard refuses."""
        with self.db.read() as session:
            if not webhook_store.has_secret(session, account_id):
                raise WebhookSecretRequired()
        webhook_addresses(url, self.intake.fetch)

    def _refuse_unaffordable(self, session: Session, payer: Payer, micros: int) -> None:
        account = account_balance(session, payer.account_id)
        if account is not None:
            refuse_unaffordable(session, account, micros, self.clock, payer.key)

    def _accept(
        self,
        request: VideoRequest,
        entry: ModelEntry,
        stored: StoredMedia,
        caller: PayingCaller,
        idem: IdempotencyKey | None,
    ) -> Accepted:
        """The one write transaction: admit, create the job, then, under the payer's account
        lock, replay the key, consent, charge and store the key's answer."""
        ttl = self.terms.idempotency_ttl
        micros = price_micros(entry, request, stored.source, stored.reference_seconds)
        try:
            with self.db.transaction() as session:
                payer = caller.admit(session)
                # The job first: the account's row, once locked, is held to the commit, and
                # on PostgreSQL the account's other requests wait for it meanwhile.
                accepted = self._create(session, request, entry, stored, payer, micros)
                # What is read of the account before its charge is read under its lock: a
                # racing request with the same key waits here, then finds this one's answer,
                # and consents are recorded once. Without either, the charge locks it.
                if idem is not None or stored.facts:
                    lock_account(session, payer.account_id)
                if idem is not None:
                    answer = idempotency.replay(session, payer.account_id, idem, ttl, self.clock)
                    if answer is not None:
                        raise _Replayed(Accepted.from_json(answer))  # the new job rolls back
                # The consent decision comes before the charge: a 409 costs nothing (§11.2).
                require_consent(
                    session,
                    account_id=payer.account_id,
                    model=entry.id,
                    facts=stored.facts,
                    consents=request.options.get("consents"),
                    clock=self.clock,
                )
                charge(
                    session,
                    account_id=payer.account_id,
                    job_id=stored.job_id,
                    model=entry.id,
                    micros=micros,
                    clock=self.clock,
                    key=payer.key,
                )
                if idem is not None:
                    answer = accepted.to_json()
                    idempotency.record(session, payer.account_id, idem, ttl, self.clock, answer)
                return accepted
        except _Replayed as replayed:
            return replayed.accepted
        except IdempotencyKeyTaken:
            assert idem is not None
            account_id = caller.payer().account_id
            with self.db.read() as session:
                answer = idempotency.replay(session, account_id, idem, ttl, self.clock)
            if answer is None:
                raise
            return Accepted.from_json(answer)

    def _create(
        self,
        session: Session,
        request: VideoRequest,
        entry: ModelEntry,
        stored: StoredMedia,
        payer: Payer,
        micros: int,
    ) -> Accepted:
        """The job's row (and its download link), not charged yet."""
        store.insert_job(
            session,
            job_id=stored.job_id,
            account_id=payer.account_id,
            model=entry.id,
            engine=entry.engine,
            spec=job_spec(request, entry, stored),
            price_micros=micros,
            max_attempts=self.terms.max_attempts,
            clock=self.clock,
            webhook_url=request.webhook_url,
        )
        download_url = None
        if entry.delivery == "download_url":
            download_url = self.links.issue(session, job_id=stored.job_id, now=self.clock.now())
        return Accepted(entry.id, stored.job_id, download_url)

    def _owned_job(self, session: Session, account_id: str, model: str, queue_id: str) -> Job:
        return _of_model(store.get_job(session, queue_id, account_id=account_id), model)

    def _average_ms(self, session: Session, job: Job) -> int:
        return store.average_execution_ms(session, job.model, self.terms.default_average_ms)

    def retrieve(
        self, account_id: str, model: str, queue_id: str, *, delete_media: bool = False
    ) -> Retrieved:
        """Where the account's job stands. Raises `MediaNotFound` for no such job (or gone)."""
        now = self.clock.now()
        with self.db.read() as session:
            polled = store.get_polled_job(session, _POLLED, queue_id, account_id=account_id)
            found, linked = polled or (None, False)
            job = _of_model(found, model)
            if job.state == JobState.FAILED and job.failure is not None:
                return Failed(job.failure)
            if store.is_pending(job):
                average = self._average_ms(session, job)
                position = queue_position(session, job, now)
                progress = job.progress if position is None else 0.0
                return Pending(average, _elapsed_ms(job.created_at, now), progress, position)
            if job.state != JobState.COMPLETED or job.output_key is None:
                raise MediaNotFound()
            if not linked:
                return Ready(job.id, job.output_key, delete_media)
            average = self._average_ms(session, job)
        if delete_media:  # the video goes once its link has served it whole
            with self.db.transaction() as session:
                link_store.delete_after_download(session, job.id)
        return ServedByLink(average, _elapsed_ms(job.created_at, job.finished_at or now))

    def status(self, account_id: str, model: str, queue_id: str) -> JobStatus:
        """The account's job's state and progress, for its events stream. Raises
        `MediaNotFound` as `retrieve` does."""
        now = self.clock.now()
        with self.db.read() as session:
            job = self._owned_job(session, account_id, model, queue_id)
            if store.is_pending(job):
                position = queue_position(session, job, now)
                if position is not None:
                    return JobStatus("queued", 0.0, position)
                return JobStatus("running", job.progress, None)
        return ended_status(job)

    def cancel(self, account_id: str, model: str, queue_id: str) -> None:
        """Cancel the account's queued or running job and refund its charge in full (once).
        A worker running it finds its lease gone at its next heartbeat and stops the engine.
        Raises `MediaNotFound` as `retrieve` does, `JobAlreadyEnded` for an ended job."""
        with self.db.read() as session:
            job_id = self._owned_job(session, account_id, model, queue_id).id
        with self.db.transaction() as session:
            # Locked: a worker's claim or end of the same job waits, or is waited for.
            job = store.get_job_for_update(session, job_id)
            if job is None or job.state in GONE:
                raise MediaNotFound()
            if not store.is_pending(job):
                raise JobAlreadyEnded(f"The job has already ended: it is {job.state.lower()}")
            was_queued = job.state == JobState.QUEUED
            store.cancel_job(session, job, clock=self.clock, refunded=True)
            # The catalogue has no refund rule for a job cancelled while it runs: its whole
            # charge goes back, as for one cancelled before it started.
            note = "cancelled before it started" if was_queued else "cancelled while it ran"
            if refund(session, job_id=job_id, clock=self.clock, note=note):
                metrics.refunded("cancelled")

    def complete(self, account_id: str, model: str, queue_id: str) -> None:
        """The client is done with the job: cancel it if still pending, delete its media."""
        with self.db.read() as session:
            job_id = self._owned_job(session, account_id, model, queue_id).id
        self.discard(job_id)

    def discard(self, job_id: str) -> None:
        """Cancel the job if still pending (refunded if it never started), then delete its
        media."""
        with self.db.transaction() as session:
            job = store.get_job_for_update(session, job_id)
            if job is not None and store.is_pending(job):
                was_queued = job.state == JobState.QUEUED
                store.cancel_job(session, job, clock=self.clock, refunded=was_queued)
                if was_queued and refund(
                    session, job_id=job_id, clock=self.clock, note="cancelled before it started"
                ):
                    metrics.refunded("cancelled")
        self.delete_media(job_id)

    def delete_media(self, job_id: str) -> None:
        """Remove a finished job's stored files, mark it DELETED and revoke its links
        (idempotent)."""
        self.storage.delete_prefix(job_prefix(job_id))
        with self.db.transaction() as session:
            job = store.get_job_for_update(session, job_id)
            if job is not None and job.state not in GONE:
                store.mark_media_deleted(job, clock=self.clock)
            link_store.revoke_job_links(session, job_id, now=self.clock.now())
