"""Ports: what the use cases need from the outside world, said as Protocols.

Adapters in `infrastructure` implement them; unit tests use in-memory fakes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

if TYPE_CHECKING:
    from application.contacts.import_contacts import ContactImport, ImportReport, ImportState
from domain.billing import LedgerEntry, PendingTopUp, TopUpPackage, WalletBalance, WalletEntry
from domain.consent import ConsentEvent, ConsentState
from domain.contacts import Contact, PhoneNumber
from domain.events import EventStatus, WebhookDelivery, WebhookEvent
from domain.gdpr import GdprRequest
from domain.messages import (
    Charge,
    InboundText,
    Message,
    MessageStatus,
    Outcome,
    Recipient,
    StatusChange,
)
from domain.shops import Shop, ShopCredentials


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`rate` events per `period_seconds`, with bursts up to `burst` (GCRA)."""

    rate: int
    period_seconds: float
    burst: int


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after_seconds: float  # 0 when allowed
    remaining: int  # whole events still available right now (0 when denied)


class RateLimiter(Protocol):
    async def acquire(self, key: str, limit: RateLimit, cost: int = 1) -> RateDecision:
        """Take `cost` events at once, or none. Keys read `"<name>:<details>"`.

        A `cost` above `limit.burst` can never pass: it is denied with an infinite
        `retry_after_seconds`.
        """
        ...


class IdGenerator(Protocol):
    def new_id(self) -> uuid.UUID:
        """A new time-ordered (v7) identifier."""
        ...


class Cipher(Protocol):
    """Authenticated encryption of PII and secrets at rest, with rotating keys."""

    def encrypt(self, plaintext: str, *, context: str = "") -> str:
        """Encrypt under the newest key; `context` is bound as associated data."""
        ...

    def decrypt(self, token: str, *, context: str = "") -> str:
        """Decrypt with whichever ring key the token names."""
        ...

    def needs_rotation(self, token: str) -> bool:
        """True when `token` was not encrypted under the newest key."""
        ...

    def reencrypt(self, token: str, *, context: str = "") -> str:
        """Decrypt and encrypt again under the newest key."""
        ...


class BlindIndex(Protocol):
    """A keyed, deterministic digest used to look up encrypted values."""

    def digest(self, normalized_value: str, *, purpose: str) -> str: ...


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job to defer. `args` must be JSON-serializable."""

    task: str
    queue: str
    args: Mapping[str, Any] = field(default_factory=dict)
    lock: str | None = None
    queueing_lock: str | None = None
    priority: int = 0
    scheduled_at: datetime | None = None


class JobQueue(Protocol):
    """Defers jobs inside the caller's transaction: they exist only if it commits."""

    async def defer(self, job: JobRequest) -> int | None:
        """Return the job id, or None when its queueing lock already holds a job."""
        ...

    async def defer_many(self, jobs: Sequence[JobRequest]) -> list[int]:
        """Defer all jobs in one statement; return their ids in order."""
        ...

    async def cancel_for_shop(self, shop_id: uuid.UUID, *, sparing: Sequence[str] = ()) -> int:
        """Cancel the shop's jobs that have not started (tenant jobs carry `shop_id`), except
        those of the `sparing` tasks (qualified names)."""
        ...


@dataclass(frozen=True, slots=True)
class OutboundSms:
    """One text for the provider. `reference` is our message id: the provider echoes it in
    delivery reports, and it is how a send interrupted by a crash is looked up."""

    reference: str
    to: str  # E.164 with the plus
    text: str
    sender: str
    unicode: bool


@dataclass(frozen=True, slots=True)
class SmsReceipt:
    """The provider accepted a message and named it `provider_id`."""

    provider_id: str


class SmsGateway(Protocol):
    """Hands texts to the SMS provider (Mitto in production, a simulator in development)."""

    async def send(self, sms: OutboundSms) -> SmsReceipt:
        """Send once, retrying only what cannot have been accepted twice; raises
        `SmsRejected`, `SmsUnauthorized` or `SmsUnavailable`."""
        ...

    async def lookup(self, reference: str) -> SmsReceipt | None:
        """Ask whether the provider accepted the message with this reference: its receipt,
        or None when the provider says it never did. Raises `SmsUnavailable` when the
        provider cannot tell (lookup unsupported or unreachable), so nothing is resent."""
        ...


class ShopRepository(Protocol):
    async def get(self, shop_id: uuid.UUID, *, for_update: bool = False) -> Shop | None:
        """`for_update` locks the row until commit. Read so before a `save`: it writes the
        whole shop back, undoing whatever another transaction committed in between."""
        ...

    async def get_by_domain(self, domain: str) -> Shop | None: ...

    async def add(self, shop: Shop) -> Shop: ...

    async def list(self) -> list[Shop]: ...

    async def save(self, shop: Shop) -> None:
        """Persist the mutable fields (name, locale settings, install state)."""
        ...

    async def delete(self, shop_id: uuid.UUID) -> bool:
        """Erase the shop and, by cascade, every row that belongs to it; False if none."""
        ...


class CredentialStore(Protocol):
    """The current shop's Admin API credentials, encrypted at rest."""

    async def get(self, *, for_update: bool = False) -> ShopCredentials | None:
        """`for_update` locks the row until commit: one refresh per shop at a time."""
        ...

    async def save(self, credentials: ShopCredentials) -> None: ...

    async def erase(self) -> None: ...


class OAuthStates(Protocol):
    async def put(self, nonce: str, shop_domain: str, expires_at: datetime) -> None: ...

    async def consume(self, nonce: str, now: datetime) -> str | None:
        """The shop the flow started with, once; None if unknown, used or expired."""
        ...


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """A delivery to store, with what its processing job carries from the request that
    brought it (request id, trace context)."""

    delivery: WebhookDelivery
    origin: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Admission:
    """What the inbox did with one delivery: `event_id` is None when nothing was stored
    (its webhook id was already stored, or `shop_id` is None: no such shop)."""

    shop_id: uuid.UUID | None
    event_id: uuid.UUID | None


class WebhookIntake(Protocol):
    """Ingress's writer: deliveries for any shops, each shop's rows under its own scope."""

    async def admit(self, entries: Sequence[InboxEntry], job: JobRequest) -> list[Admission]:
        """In one transaction, store each delivery of a known shop once and defer `job` for
        each one stored, its args completed with `shop_id` and `event_id`; one admission
        per entry, in order."""
        ...


class WebhookInbox(Protocol):
    async def get(
        self, event_id: uuid.UUID, *, for_update: bool = False
    ) -> tuple[WebhookEvent, bytes] | None:
        """The event and its decrypted payload; `for_update` holds it until commit."""
        ...

    async def mark(
        self, event_id: uuid.UUID, status: EventStatus, *, error: str | None = None
    ) -> None:
        """Record an attempt's outcome (increments attempts); `error` is stored redacted of
        personal data and shortened, so a handler's exception text can be passed as it is.
        A handled event is never marked failed."""
        ...

    async def find(
        self, *, status: EventStatus | None, topic: str | None, limit: int
    ) -> list[WebhookEvent]: ...

    async def reset_many(
        self, event_ids: Sequence[uuid.UUID], *, only: EventStatus | None = None
    ) -> list[uuid.UUID]:
        """Back to `received` for a replay, in one statement; returns the ids reset. With
        `only`, just those still in that status when the statement runs."""
        ...

    async def prune(self, *, handled_before: datetime) -> int:
        """Delete processed or ignored events handled before then; returns how many."""
        ...

    async def payloads(
        self, *, after: uuid.UUID | None, limit: int
    ) -> list[tuple[WebhookEvent, bytes]]:
        """Events with their decrypted payloads, in id order, after the given id."""
        ...

    async def delete(self, event_ids: Sequence[uuid.UUID]) -> int:
        """Remove these events (an erasure); returns how many existed."""
        ...


class AuditLog(Protocol):
    async def record(
        self,
        *,
        action: str,
        actor: str,
        subject: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None: ...


class PhoneNumbers(Protocol):
    def parse(self, raw: str, default_region: str | None) -> PhoneNumber:
        """E.164 and what the number says about its owner; `InvalidValue` with the reason."""
        ...


class CountryZones(Protocol):
    def zone_of(self, country: str) -> str | None:
        """The time zone of a country (ISO 3166-1) that has only one, like France's; None
        for one spanning several, like the United States, or an unknown code."""
        ...


class ContactRepository(Protocol):
    async def get(self, contact_id: uuid.UUID, *, for_update: bool = False) -> Contact | None: ...

    async def find(
        self,
        *,
        phone: str | None = None,
        email: str | None = None,
        shopify_customer_id: int | None = None,
        for_update: bool = False,
    ) -> Contact | None: ...

    async def add(self, contact: Contact, now: datetime) -> None: ...

    async def add_many(self, contacts: Sequence[Contact], now: datetime) -> None: ...

    async def save(self, contact: Contact, now: datetime) -> None: ...

    async def page(
        self,
        *,
        limit: int,
        cursor: tuple[datetime, uuid.UUID] | None = None,
        state: ConsentState | None = None,
        tag: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> list[Contact]: ...

    async def matching(
        self,
        *,
        phones: Sequence[str] = (),
        emails: Sequence[str] = (),
        shopify_customer_ids: Sequence[int] = (),
    ) -> list[Contact]:
        """Every contact matching any key (normalized values), oldest first."""
        ...

    async def recipients(self, contact_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Recipient]:
        """What the sending gates need for each contact, in one round trip."""
        ...

    async def mark_phones_invalid(
        self, refused: Sequence[tuple[uuid.UUID, str]], at: datetime
    ) -> None:
        """Mark each (contact, E.164 number) the provider refused, where the contact's phone
        is still that number: a number changed meanwhile is a new one, not refused."""
        ...

    async def redact(self, contact_id: uuid.UUID, now: datetime) -> None:
        """Erase the contact's personal data, leaving a `redacted` tombstone."""
        ...


class ConsentLedger(Protocol):
    """Append-only: events are added, never changed."""

    async def history(self, contact_id: uuid.UUID) -> list[ConsentEvent]: ...

    async def tail(self, contact_id: uuid.UUID) -> ConsentEvent | None: ...

    async def append(self, events: Sequence[ConsentEvent]) -> None: ...


class GdprRequests(Protocol):
    """Compliance requests; subjects and export bundles are sealed at rest."""

    async def add(self, request: GdprRequest) -> None: ...

    async def get(
        self, request_id: uuid.UUID, *, for_update: bool = False
    ) -> GdprRequest | None: ...

    async def save(self, request: GdprRequest) -> None:
        """Persist status, fulfilled_at and error."""
        ...

    async def store_bundle(self, request_id: uuid.UUID, bundle: str) -> None: ...

    async def bundle(self, request_id: uuid.UUID) -> str | None: ...

    async def page(self, *, limit: int, before: uuid.UUID | None = None) -> list[GdprRequest]:
        """Newest first, after the cursor (the last id of the previous page)."""
        ...

    async def pending(self, *, received_before: datetime, limit: int) -> list[GdprRequest]:
        """Requests still owed, earliest due first (every shop's on the maintenance path)."""
        ...

    async def count_overdue(self, now: datetime) -> int:
        """Requests not fulfilled by their due date."""
        ...

    async def erase_personal_data(self, request_ids: Sequence[uuid.UUID]) -> None:
        """Drop these requests' subjects and bundles, keeping the non-personal record."""
        ...


class ContactImports(Protocol):
    async def create(self, import_id: uuid.UUID, csv_text: str) -> None: ...

    async def get(
        self, import_id: uuid.UUID, *, for_update: bool = False
    ) -> ContactImport | None: ...

    async def lock_unfinished(self) -> list[ContactImport]:
        """The imports that still hold their file, locked until the transaction ends."""
        ...

    async def replace_file(self, import_id: uuid.UUID, csv_text: str) -> None: ...

    async def update(
        self, import_id: uuid.UUID, state: ImportState, report: ImportReport, now: datetime
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class BackInStockEntry:
    contact_id: uuid.UUID
    variant_id: int
    wording: str  # what the shopper agreed to
    created_at: datetime
    notified_at: datetime | None


class BackInStockRequests(Protocol):
    async def add(self, contact_id: uuid.UUID, variant_id: int, wording: str) -> bool: ...

    async def waiting(self, variant_id: int) -> list[uuid.UUID]: ...

    async def of_contacts(self, contact_ids: Sequence[uuid.UUID]) -> list[BackInStockEntry]:
        """Every request these contacts made, notified or not, oldest first."""
        ...


class Wallet(Protocol):
    """The current shop's wallet; moved only by ledger entries."""

    async def ensure(self) -> None:
        """Create the (empty) wallet if the shop has none yet."""
        ...

    async def balance(self) -> WalletBalance | None: ...

    async def apply(self, entry: WalletEntry) -> LedgerEntry | None:
        """Record the entry and move the wallet with it; None when its reference was
        already recorded; `InsufficientCredits` when it would overdraw."""
        ...

    async def history(
        self, *, limit: int, before: tuple[datetime, uuid.UUID] | None = None
    ) -> list[tuple[uuid.UUID, datetime, LedgerEntry]]: ...

    async def balanced(self) -> bool: ...

    async def apply_many(
        self, entries: Sequence[WalletEntry]
    ) -> tuple[list[LedgerEntry], list[WalletEntry]]:
        """Apply in order; returns (recorded, refused as overdrawing). Replayed references
        are in neither list."""
        ...

    async def set_low_balance_threshold(self, credits: int) -> None: ...

    async def record_topup(
        self, topup_id: uuid.UUID, package: TopUpPackage, purchase_id: str
    ) -> None: ...

    async def topup(
        self, *, purchase_id: str | None = None, topup_id: uuid.UUID | None = None
    ) -> PendingTopUp | None: ...


class ClaimedMessage(Protocol):
    message: Message
    interrupted: bool  # a previous attempt died between claiming and settling it
    consent: ConsentState | None  # its contact's consent as of the claim; None: no contact
    timezones: tuple[str, ...]  # its contact's (`Contact.timezones`); () without one
    phone_invalid: bool  # the provider refused its contact's number after it was queued


@dataclass(frozen=True, slots=True)
class InboundEntry:
    """An inbound text as the merchant's inbox lists it."""

    message: InboundText
    needs_review: bool  # it talks of opting out without being a bare keyword


@dataclass(frozen=True, slots=True)
class Correspondent:
    """Whose texts to find: a person's contacts, and their numbers for the texts no contact
    was linked to (a number can text the shop, and get the HELP reply, before it becomes a
    contact)."""

    contact_ids: tuple[uuid.UUID, ...]
    phones: tuple[str, ...]  # E.164


class MessageStore(Protocol):
    """Messages of the unit of work's shop; batch methods are one round trip each."""

    async def serialize(self) -> None:
        """Wait for the shop's other queueing transactions; hold the turn until this ends."""
        ...

    async def existing(
        self, idempotency_keys: Sequence[str]
    ) -> dict[str, tuple[uuid.UUID, MessageStatus]]:
        """The messages already queued under these keys, with their current status."""
        ...

    async def marketing_counts(
        self, contact_ids: Sequence[uuid.UUID], since: datetime
    ) -> dict[uuid.UUID, int]: ...

    async def recent_dedupe_keys(self, keys: Sequence[str], since: datetime) -> set[str]: ...

    async def add_many(self, messages: Sequence[Message], now: datetime) -> None: ...

    async def claim(
        self, ids: Sequence[uuid.UUID], now: datetime, lease_start: datetime
    ) -> Sequence[ClaimedMessage]:
        """Move queued messages (and `sending` ones claimed before `lease_start`) to
        `sending`, returning them decrypted."""
        ...

    async def claimed_until(self, ids: Sequence[uuid.UUID]) -> datetime | None: ...

    async def settle(self, outcomes: Sequence[Outcome], now: datetime) -> set[uuid.UUID]:
        """Records outcomes of messages still `sending`; returns those it moved. A report
        or another attempt may have settled a message first: that one is not moved."""
        ...

    async def get(self, message_id: uuid.UUID) -> Message | None: ...

    async def history(self, message_id: uuid.UUID) -> list[StatusChange]: ...

    async def page(
        self,
        *,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None = None,
        status: MessageStatus | None = None,
        contact_id: uuid.UUID | None = None,
        source: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> list[Message]: ...

    async def for_update(self, message_id: uuid.UUID) -> tuple[Message, Charge] | None: ...

    async def add_report(
        self,
        message_id: uuid.UUID,
        status: MessageStatus,
        *,
        provider_status: str | None,
        error_code: str | None,
        payload: str,
        reported_at: datetime | None,
        now: datetime,
    ) -> bool:
        """False when this message already had a report of this status (a replay)."""
        ...

    async def advance(
        self,
        message_id: uuid.UUID,
        status: MessageStatus,
        *,
        charge: Charge,
        detail: str | None,
        at: datetime,
    ) -> None: ...

    async def add_inbound(self, inbound: InboundText, *, needs_review: bool = False) -> bool:
        """False when the provider already delivered this inbound text."""
        ...

    async def inbound_page(
        self,
        *,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None = None,
        needs_review: bool | None = None,
    ) -> list[InboundEntry]:
        """Newest first; `before` is the (received_at, id) of the last one seen."""
        ...

    async def orphans(self, before: datetime, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(shop, message) pairs due before `before` that no live delivery job names
        (maintenance scope: across shops)."""
        ...

    async def unresolved(self, before: datetime, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(shop, message) pairs left `unknown` since before `before` (maintenance scope)."""
        ...

    async def of_correspondent(self, who: Correspondent) -> list[Message]:
        """The messages sent to this person, oldest first."""
        ...

    async def inbound_of_correspondent(self, who: Correspondent) -> list[InboundText]:
        """The texts this person sent the shop, oldest first."""
        ...

    async def redact_correspondent(self, who: Correspondent) -> int:
        """Erase the person's numbers and texts from the messages sent to them and from the
        texts they sent; returns how many messages sent to them were erased."""
        ...

    async def index_phones(
        self, *, inbound: bool, after: uuid.UUID | None, limit: int
    ) -> tuple[int, uuid.UUID | None]:
        """Fill in the phone blind index of up to `limit` messages (or inbound texts) past
        `after` in id order that were stored without one (maintenance scope: across shops);
        returns how many were indexed and the id to go on after, None when none are left."""
        ...


@dataclass(frozen=True, slots=True)
class DeliveryReportIn:
    provider_id: str | None
    reference: str | None
    status_word: str | None
    error_code: str | None
    reported_at: datetime | None
    raw: str  # the payload as received, kept (encrypted) as evidence


@dataclass(frozen=True, slots=True)
class HeldReport:
    id: uuid.UUID
    report: DeliveryReportIn


class UnmatchedReports(Protocol):
    """Delivery reports that matched no message when they came, across shops. The callback
    may only add to them (`UnitOfWorkFactory.hold_report`); the maintenance scope reads
    them back."""

    async def oldest(self, limit: int) -> list[HeldReport]: ...

    async def remove(self, ids: Sequence[uuid.UUID]) -> None: ...

    async def drop_received_before(self, before: datetime) -> int:
        """Forget reports held since before `before`; returns how many."""
        ...


class UnitOfWork(Protocol):
    """One database transaction, scoped to one shop (or the explicit maintenance path).

    Leaving the context without `commit()` rolls everything back, jobs included.
    """

    shop_id: uuid.UUID | None
    shops: ShopRepository
    audit: AuditLog
    jobs: JobQueue
    credentials: CredentialStore
    webhooks: WebhookInbox
    oauth_states: OAuthStates
    contacts: ContactRepository
    consent: ConsentLedger
    imports: ContactImports
    back_in_stock: BackInStockRequests
    wallet: Wallet
    gdpr: GdprRequests
    messages: MessageStore
    unmatched_reports: UnmatchedReports

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def hold_shop_domain(self, domain: str) -> None:
        """Wait for, then hold until commit, the lock an exclusive `for_shop_domain` takes:
        no install of that domain commits meanwhile."""
        ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested transaction: an exception leaving it undoes only the work inside."""
        ...


@dataclass(frozen=True, slots=True)
class ShopRef:
    """Enough to call Shopify for a shop: its id (token lookup) and domain (address)."""

    id: uuid.UUID
    domain: str


@dataclass(frozen=True, slots=True)
class ShopInfo:
    name: str
    currency: str
    timezone: str
    country: str


class ShopifyAuth(Protocol):
    """Shopify's OAuth token endpoint: every way of getting an offline token."""

    def authorize_url(self, shop_domain: str, *, state: str, redirect_uri: str) -> str: ...

    async def exchange_code(self, shop_domain: str, code: str) -> ShopCredentials: ...

    async def exchange_session_token(
        self, shop_domain: str, session_token: str
    ) -> ShopCredentials: ...

    async def refresh(self, shop_domain: str, refresh_token: str) -> ShopCredentials: ...

    async def migrate_legacy_token(
        self, shop_domain: str, access_token: str
    ) -> ShopCredentials: ...


class ShopifyAdmin(Protocol):
    """The Admin GraphQL operations the app uses."""

    async def shop_info(self, shop: ShopRef) -> ShopInfo: ...

    async def subscribe_webhook(self, shop: ShopRef, topic: str, uri: str) -> bool:
        """True when created, False when the subscription already existed."""
        ...

    async def mutate(
        self, shop: ShopRef, root: str, query: str, variables: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Run a mutation; its `userErrors` raise `ShopifyRejected`."""
        ...

    async def create_one_time_purchase(
        self, shop: ShopRef, *, name: str, amount: str, currency: str, return_url: str, test: bool
    ) -> tuple[str, str]:
        """(purchase id, confirmation URL the merchant must visit to approve)."""
        ...

    async def purchase_status(self, shop: ShopRef, purchase_id: str) -> str | None: ...


class UnitOfWorkFactory(Protocol):
    def for_shop(self, shop_id: uuid.UUID) -> UnitOfWork: ...

    def for_shop_domain(self, domain: str, *, exclusive: bool = False) -> UnitOfWork:
        """Scoped to the shop with this domain; `shop_id` is None inside if none exists.
        `exclusive` holds the domain until commit, so two installs of a new shop cannot
        both create it."""
        ...

    def maintenance(self) -> UnitOfWork: ...

    async def locate_message(
        self, message_id: uuid.UUID | None, provider_id: str | None
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(shop id, message id) for a provider callback, by our reference or its id."""
        ...

    async def shop_for_number(self, number: str) -> uuid.UUID | None:
        """The shop whose sending number this is."""
        ...

    async def hold_report(
        self, report: DeliveryReportIn, status: MessageStatus, now: datetime
    ) -> bool:
        """Keep a report no message matches yet, in its own transaction; False when one
        with this provider id and status is already held."""
        ...


@dataclass(frozen=True, slots=True)
class JobFailure:
    job_id: int
    task: str
    queue: str
    attempt: int
    error_type: str
    error: str
    traceback_digest: str
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class JobSummary:
    id: int
    task: str
    queue: str
    status: str
    attempts: int
    scheduled_at: datetime | None
    args: Mapping[str, Any]
    last_failure: JobFailure | None = None


class JobAdmin(Protocol):
    """Operations over the queue itself: the dead-letter view and recovery."""

    async def list_jobs(
        self, *, status: str, queue: str | None, limit: int
    ) -> list[JobSummary]: ...

    async def get_job(self, job_id: int) -> JobSummary | None: ...

    async def failures(self, job_id: int) -> list[JobFailure]: ...

    async def retry(self, job_id: int) -> bool:
        """Put a failed job back in the queue; False when it is not failed."""
        ...

    async def cancel(self, job_id: int) -> bool:
        """Cancel a job that has not started; False when it cannot be cancelled."""
        ...

    async def stalled_jobs(self, *, seconds_since_heartbeat: float) -> list[tuple[int, int]]:
        """(job id, attempts so far) of running jobs whose worker stopped heart-beating."""
        ...

    async def requeue_stalled(self, job_id: int) -> None: ...

    async def fail_stalled(self, job_id: int, reason: str) -> None:
        """Mark a stalled job failed, with `reason` in its failure record."""
        ...

    async def prune_finished(self, *, older_than_hours: int) -> None: ...

    async def queue_depth(self) -> list[tuple[str, str, int]]:
        """(queue, status, count) for jobs waiting or running."""
        ...
