"""QueueMessages: the gates, the reservation and the insert, for one text or a batch.

Every SMS enters here (ARCHITECTURE §5). A batch costs one round trip per step whatever
its size; a message a gate stops is still recorded with its reason, and nothing is
sent before the transaction that queued it commits (its delivery job is deferred in it).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from application.billing.debit_wallet import DebitWallet
from application.ports import Clock, IdGenerator, JobRequest, UnitOfWork
from application.tasks import DELIVER_MESSAGES
from domain.billing import PriceList, estimate
from domain.errors import InvalidValue
from domain.messages import (
    MarketingLimit,
    Message,
    MessageCategory,
    MessageStatus,
    Recipient,
    SendingPolicy,
    compose,
    consent_allows,
    keeps_quiet_hours,
    marketing_limits,
)
from domain.quiet_hours import next_send_time_in_zones
from domain.shops import Shop

# Messages per delivery job: big enough that claiming and settling amortise, small enough
# that a crash re-examines little (ARCHITECTURE §4: 100-500).
DELIVERY_BATCH = 250
DEFAULT_DEDUPE_WINDOW = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One text to queue: to a contact, or (system texts only) straight to a number."""

    text: str
    category: MessageCategory
    source: str
    idempotency_key: str
    contact_id: uuid.UUID | None = None
    direct: Recipient | None = None  # a number that need not be a contact (test sends)
    dedupe_key: str | None = None
    dedupe_window: timedelta = DEFAULT_DEDUPE_WINDOW
    bypass_quiet_hours: bool = False

    def __post_init__(self) -> None:
        if (self.contact_id is None) == (self.direct is None):
            raise InvalidValue("a message goes to a contact or to a number, exactly one")
        if self.direct is not None and self.category is not MessageCategory.SYSTEM:
            raise InvalidValue("only system texts may go to a number that is not a contact")
        if not self.idempotency_key or len(self.idempotency_key) > 200:
            raise InvalidValue("an idempotency key of 1-200 characters is required")


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    message_id: uuid.UUID
    status: MessageStatus
    scheduled_at: datetime | None
    replay: bool = False  # the idempotency key was already queued: nothing new happened


class QueueMessages:
    def __init__(
        self, clock: Clock, ids: IdGenerator, prices: PriceList, debit: DebitWallet
    ) -> None:
        self._clock = clock
        self._ids = ids
        self._prices = prices
        self._debit = debit

    async def __call__(
        self, uow: UnitOfWork, shop: Shop, requests: Sequence[OutgoingMessage]
    ) -> list[QueuedMessage]:
        now = self._clock.now()
        policy = SendingPolicy.from_settings(shop.settings)
        # One shop's batches take turns: the idempotency, cap and dedupe checks below and
        # the inserts that they decide about then see each other (they would queue behind
        # each other on the wallet row anyway). One lock, not one per key: a campaign
        # batch would otherwise hold a thousand of the server's few thousand lock slots.
        await uow.messages.serialize()
        known = await uow.messages.existing([r.idempotency_key for r in requests])
        fresh = _first_of_each_key([r for r in requests if r.idempotency_key not in known])
        recipients = await uow.contacts.recipients(
            [r.contact_id for r in fresh if r.contact_id is not None]
        )
        drafts = [self._draft(shop, policy, r, recipients, now) for r in fresh]
        drafts = await self._limit(uow, policy, recipients, drafts, now)
        drafts = await self._dedupe(uow, fresh, drafts, now)
        drafts = await self._reserve(uow, drafts)
        await uow.messages.add_many(drafts, now)
        await uow.jobs.defer_many(_delivery_jobs(shop.id, drafts))
        queued = {d.idempotency_key: d for d in drafts}
        return [
            QueuedMessage(*known[r.idempotency_key], None, replay=True)
            if r.idempotency_key in known
            else _result(queued[r.idempotency_key])
            for r in requests
        ]

    def _draft(
        self,
        shop: Shop,
        policy: SendingPolicy,
        request: OutgoingMessage,
        recipients: dict[uuid.UUID, Recipient],
        now: datetime,
    ) -> Message:
        recipient = request.direct or recipients.get(request.contact_id)  # type: ignore[arg-type]
        text = compose(request.text, request.category, shop.name, policy.footer)
        priced = estimate(text, recipient.country if recipient else None, self._prices)
        status, error, scheduled_at = MessageStatus.QUEUED, None, None
        if recipient is None or recipient.phone is None:
            status, error = MessageStatus.BLOCKED_CONSENT, "no such contact, or no phone"
        elif not consent_allows(request.category, recipient.consent_state, policy):
            status, error = MessageStatus.BLOCKED_CONSENT, f"contact is {recipient.consent_state}"
        elif recipient.phone_invalid:
            status, error = MessageStatus.BLOCKED_INVALID_NUMBER, "the provider refused this number"
        elif _keeps_quiet_hours(request, policy):
            scheduled_at = _quiet_hours_start(shop, policy, recipient, now)
        return Message(
            id=self._ids.new_id(),
            shop_id=shop.id,
            contact_id=recipient.contact_id if recipient else None,
            to=recipient.phone if recipient and recipient.phone else "",
            country=priced.country,
            text=text,
            category=request.category,
            source=request.source,
            status=status,
            encoding=priced.encoding,
            segments=priced.segments,
            credits=priced.credits,
            price_version=self._prices.version,
            idempotency_key=request.idempotency_key,
            dedupe_key=request.dedupe_key,
            scheduled_at=scheduled_at,
            created_at=now,
            error=error,
        )

    async def _limit(
        self,
        uow: UnitOfWork,
        policy: SendingPolicy,
        recipients: dict[uuid.UUID, Recipient],
        drafts: list[Message],
        now: datetime,
    ) -> list[Message]:
        limits = {
            d.id: marketing_limits(policy, recipients[d.contact_id])
            for d in drafts
            if d.category is MessageCategory.MARKETING and not d.status.blocked and d.contact_id
        }
        if not limits:
            return drafts
        windows = {limit.window for each in limits.values() for limit in each}
        contacts = {d.contact_id for d in drafts if d.id in limits}
        counts = await _marketing_counts(uow, contacts, windows, now)
        reached: dict[uuid.UUID, MarketingLimit] = {}
        for draft in (d for d in drafts if d.id in limits):
            limit = _first_reached(limits[draft.id], counts, draft.contact_id)
            if limit is not None:
                reached[draft.id] = limit
            else:  # a text this batch queues counts against the ones after it
                counts.update((draft.contact_id, window) for window in windows)
        return [
            _block(d, reached[d.id].status, reached[d.id].reason) if d.id in reached else d
            for d in drafts
        ]

    async def _dedupe(
        self,
        uow: UnitOfWork,
        requests: Sequence[OutgoingMessage],
        drafts: list[Message],
        now: datetime,
    ) -> list[Message]:
        by_window: dict[timedelta, list[str]] = {}
        for request in requests:
            if request.dedupe_key:
                by_window.setdefault(request.dedupe_window, []).append(request.dedupe_key)
        if not by_window:
            return drafts
        recent: set[str] = set()
        for window, keys in by_window.items():  # one query per distinct window, usually one
            recent |= await uow.messages.recent_dedupe_keys(keys, now - window)
        result = []
        for draft in drafts:
            key = draft.dedupe_key
            if key and not draft.status.blocked:
                if key in recent:
                    draft = _block(draft, MessageStatus.DUPLICATE, "sent within the dedupe window")
                else:
                    recent.add(key)
            result.append(draft)
        return result

    async def _reserve(self, uow: UnitOfWork, drafts: list[Message]) -> list[Message]:
        payable = [(d.id, d.credits) for d in drafts if not d.status.blocked]
        if not payable:
            return drafts
        refused = await self._debit.many(uow, payable, price_version=self._prices.version)
        return [
            _block(d, MessageStatus.BLOCKED_INSUFFICIENT_CREDITS, "wallet balance too low")
            if d.id in refused
            else d
            for d in drafts
        ]


def _first_of_each_key(requests: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
    unique: dict[str, OutgoingMessage] = {}
    for request in requests:
        unique.setdefault(request.idempotency_key, request)
    return list(unique.values())


async def _marketing_counts(
    uow: UnitOfWork, contact_ids: set[uuid.UUID | None], windows: set[timedelta], now: datetime
) -> Counter[tuple[uuid.UUID | None, timedelta]]:
    """Marketing texts each contact got within each window: one query per distinct window,
    usually one (every default is 24 h)."""
    counts: Counter[tuple[uuid.UUID | None, timedelta]] = Counter()
    for window in windows:
        found = await uow.messages.marketing_counts(list(contact_ids), now - window)
        counts.update({(contact, window): n for contact, n in found.items()})
    return counts


def _first_reached(
    limits: Sequence[MarketingLimit],
    counts: Counter[tuple[uuid.UUID | None, timedelta]],
    contact_id: uuid.UUID | None,
) -> MarketingLimit | None:
    return next((x for x in limits if counts[contact_id, x.window] >= x.count), None)


def _keeps_quiet_hours(request: OutgoingMessage, policy: SendingPolicy) -> bool:
    return not request.bypass_quiet_hours and keeps_quiet_hours(request.category, policy)


def _quiet_hours_start(
    shop: Shop, policy: SendingPolicy, recipient: Recipient, now: datetime
) -> datetime | None:
    """None when the message may go now; otherwise the next allowed local minute."""
    try:
        at = next_send_time_in_zones(
            now,
            recipient.timezones or (shop.timezone,),
            country=recipient.country,
            subdivision=recipient.subdivision,
            shop=policy.quiet_hours,
        )
    except InvalidValue:
        # No allowed minute at all (zones too far apart for the shop's hours): the same
        # check at the claim fails the text with the reason, and releases its credits,
        # instead of this failing the whole batch.
        return None
    return at if at > now else None


def _block(draft: Message, status: MessageStatus, reason: str) -> Message:
    return replace(draft, status=status, error=reason, scheduled_at=None)


def _result(message: Message) -> QueuedMessage:
    return QueuedMessage(message.id, message.status, message.scheduled_at)


def delivery_jobs(
    shop_id: uuid.UUID, ids: Sequence[uuid.UUID], at: datetime | None = None
) -> list[JobRequest]:
    """Delivery jobs for these messages, `DELIVERY_BATCH` to a job, runnable from `at`."""
    return [
        DELIVER_MESSAGES.job(
            {"shop_id": str(shop_id), "message_ids": [str(i) for i in ids[n : n + DELIVERY_BATCH]]},
            scheduled_at=at,
        )
        for n in range(0, len(ids), DELIVERY_BATCH)
    ]


def _delivery_jobs(shop_id: uuid.UUID, drafts: Sequence[Message]) -> list[JobRequest]:
    by_time: dict[datetime | None, list[uuid.UUID]] = {}
    for draft in drafts:
        if draft.status is MessageStatus.QUEUED:
            by_time.setdefault(draft.scheduled_at, []).append(draft.id)
    return [job for at, ids in by_time.items() for job in delivery_jobs(shop_id, ids, at)]
