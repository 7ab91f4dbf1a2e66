"""DeliverMessages: hand a batch of queued messages to the provider, exactly once.

Each chunk goes through three steps: claim (the messages become `sending`, committed),
send (no transaction open), settle (statuses, ledger and retries, one transaction). A
crash between the provider accepting and the settle commit leaves `sending` messages;
whoever claims them next asks the provider by reference before any resend, and only
resends what the provider says it never accepted. A claim is a lease: a `sending`
message is only re-examined after its lease, so a live worker is never second-guessed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from application.billing.debit_wallet import SettleDebits
from application.errors import (
    INVALID_NUMBER,
    SmsFateUnknown,
    SmsRejected,
    SmsUnauthorized,
    SmsUnavailable,
)
from application.messaging.queue_messages import delivery_jobs
from application.ports import (
    ClaimedMessage,
    Clock,
    OutboundSms,
    RateLimit,
    RateLimiter,
    SmsGateway,
    UnitOfWorkFactory,
)
from domain.errors import InvalidValue
from domain.messages import (
    Charge,
    MessageCategory,
    MessageStatus,
    Outcome,
    SendingPolicy,
    consent_allows,
    keeps_quiet_hours,
)
from domain.messaging import Encoding
from domain.quiet_hours import next_send_time_in_zones, subdivision_for

log = logging.getLogger("blossom.messages")

INTERRUPTED = "send interrupted and the provider could not say whether it took it"
QUIET_HOURS = "waiting for the recipient's quiet hours to end"
# With our key refused, texts wait for an operator: looked at again every ten minutes, for
# a day at most.
KEY_REFUSED_RECHECK = timedelta(minutes=10)
KEY_REFUSED_PATIENCE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DeliveryLimits:
    provider: RateLimit | None  # None: no limit (messages per second for the account)
    shop: RateLimit | None
    lease: timedelta = timedelta(seconds=60)
    # With the backoff below, 12 attempts ride out a provider outage of about an hour
    # (1.7 h at most) before a text fails; 8 capped at five minutes gave up within minutes.
    max_attempts: int = 12
    concurrency: int = 32
    chunk: int = 100


@dataclass(frozen=True, slots=True)
class _Sending:
    """What a shop's texts go out with in one delivery run."""

    policy: SendingPolicy
    sender: str
    timezone: str  # the shop's: for a contact without one


@dataclass(slots=True)
class DeliveryResult:
    statuses: Counter[tuple[MessageStatus, MessageCategory]] = field(default_factory=Counter)
    unauthorized: bool = False  # the provider refused our key: alert, the job must fail


class DeliverMessages:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        gateway: SmsGateway,
        limiter: RateLimiter,
        clock: Clock,
        limits: DeliveryLimits,
        default_sender: str,
    ) -> None:
        self._uows = uows
        self._gateway = gateway
        self._limiter = limiter
        self._clock = clock
        self._limits = limits
        self._default_sender = default_sender
        self._settle_debits = SettleDebits()

    async def __call__(
        self, shop_id: uuid.UUID, message_ids: Sequence[uuid.UUID]
    ) -> DeliveryResult:
        result = DeliveryResult()
        remaining = list(message_ids)
        size = self._chunk_size()
        while remaining:
            chunk = remaining[:size]
            wait = await self._take_tokens(shop_id, len(chunk))
            if wait:
                await self._follow_up(shop_id, remaining, self._clock.now() + wait)
                break
            remaining = remaining[size:]
            await self._deliver_chunk(shop_id, chunk, result)
        return result

    async def _deliver_chunk(
        self, shop_id: uuid.UUID, ids: list[uuid.UUID], result: DeliveryResult
    ) -> None:
        now = self._clock.now()
        async with self._uows.for_shop(shop_id) as uow:
            shop = await uow.shops.get(shop_id)
            claimed = await uow.messages.claim(ids, now, now - self._limits.lease)
            await uow.commit()
        if len(claimed) < len(ids):
            await self._revisit_live_claims(shop_id, ids, claimed)
        if not claimed:
            return
        if shop is None or not shop.installed:
            outcomes = [_failed(c, "the shop uninstalled the app") for c in claimed]
        else:
            policy = SendingPolicy.from_settings(shop.settings)
            sending = _Sending(policy, policy.sender or self._default_sender, shop.timezone)
            gate = asyncio.Semaphore(self._limits.concurrency)
            outcomes = list(
                await asyncio.gather(*(self._attempt(c, sending, gate) for c in claimed))
            )
        settled = await self._settle(shop_id, claimed, outcomes)
        categories = {c.message.id: c.message.category for c in claimed}
        for outcome in settled:
            result.statuses[(outcome.status, categories[outcome.message_id])] += 1
        result.unauthorized |= any(o.error == "unauthorized" for o in outcomes)

    async def _attempt(
        self, claimed: ClaimedMessage, sending: _Sending, gate: asyncio.Semaphore
    ) -> Outcome:
        message = claimed.message
        if not message.to:
            return _failed(claimed, "recipient erased (GDPR)")
        async with gate:
            if claimed.interrupted:
                try:
                    receipt = await self._gateway.lookup(str(message.id))
                except SmsUnavailable:
                    return _fate_unknown(claimed)
                if receipt is not None:
                    return Outcome(
                        message.id, MessageStatus.SENT, Charge.CAPTURED, receipt.provider_id
                    )
            held = self._held(claimed, sending)
            if held is not None:
                return held
            sms = OutboundSms(
                reference=str(message.id),
                to=message.to,
                text=message.text,
                sender=sending.sender,
                unicode=message.encoding is Encoding.UCS2,
            )
            try:
                receipt = await self._gateway.send(sms)
            except SmsFateUnknown:
                return _fate_unknown(claimed)
            except SmsRejected as exc:
                return _failed(claimed, exc.code)
            except SmsUnauthorized:
                return self._park(claimed)
            except SmsUnavailable as exc:
                return self._retry(claimed, "provider unavailable", exc.retry_after_seconds)
        return Outcome(message.id, MessageStatus.SENT, Charge.CAPTURED, receipt.provider_id)

    def _held(self, claimed: ClaimedMessage, sending: _Sending) -> Outcome | None:
        """Consent, the number and quiet hours were checked when the text was queued; each
        can have changed since (a STOP, a refusal of the number by an earlier text, or a
        retry or a parked text now falling in the night)."""
        message, consent, policy = claimed.message, claimed.consent, sending.policy
        if consent is not None and not consent_allows(message.category, consent, policy):
            error = f"contact is {consent}"
            return Outcome(message.id, MessageStatus.BLOCKED_CONSENT, Charge.RELEASED, error=error)
        if claimed.phone_invalid:
            error = "the provider refused this number for an earlier text"
            return Outcome(
                message.id, MessageStatus.BLOCKED_INVALID_NUMBER, Charge.RELEASED, error=error
            )
        if not keeps_quiet_hours(message.category, policy):
            return None
        now = self._clock.now()
        try:
            allowed = next_send_time_in_zones(
                now,
                claimed.timezones or (sending.timezone,),
                country=message.country,
                subdivision=subdivision_for(message.to),
                shop=policy.quiet_hours,
            )
        except InvalidValue as exc:
            return _failed(claimed, str(exc))
        if allowed <= now:
            return None
        return Outcome(
            message.id, MessageStatus.QUEUED, Charge.RESERVED, error=QUIET_HOURS, retry_at=allowed
        )

    def _park(self, claimed: ClaimedMessage) -> Outcome:
        """The provider refused our key: nothing can go until an operator fixes it, so the
        text waits without spending its attempts, and fails only once it is a day old."""
        message = claimed.message
        now = self._clock.now()
        if now - message.created_at > KEY_REFUSED_PATIENCE:
            return _failed(claimed, "unauthorized for a day")
        wait = KEY_REFUSED_RECHECK * random.uniform(1.0, 1.2)  # noqa: S311 - spread the crowd
        return Outcome(
            message.id,
            MessageStatus.QUEUED,
            Charge.RESERVED,
            error="unauthorized",
            retry_at=now + wait,
        )

    def _retry(self, claimed: ClaimedMessage, why: str, advised: float | None) -> Outcome:
        message = claimed.message
        if message.attempts >= self._limits.max_attempts:
            return _failed(claimed, f"{why} after {message.attempts} attempts")
        # Exponential with full jitter, capped at half an hour; never sooner than advised.
        delay = random.uniform(0, min(1800.0, 5.0 * 2 ** (message.attempts - 1)))  # noqa: S311
        delay = max(delay, advised or 0.0, 1.0)
        return Outcome(
            message.id,
            MessageStatus.QUEUED,
            Charge.RESERVED,
            error=why,
            retry_at=self._clock.now() + timedelta(seconds=delay),
        )

    async def _settle(
        self, shop_id: uuid.UUID, claimed: Sequence[ClaimedMessage], outcomes: list[Outcome]
    ) -> list[Outcome]:
        """Records the outcomes; returns those of texts this attempt still held."""
        credits = {c.message.id: c.message.credits for c in claimed}
        now = self._clock.now()
        async with self._uows.for_shop(shop_id) as uow:
            # Contacts before messages: the order an erasure locks them in. Marked even when
            # a report settled the message first: the refusal of the number stands anyway.
            await uow.contacts.mark_phones_invalid(_refused_numbers(claimed, outcomes), now)
            moved = await uow.messages.settle(outcomes, now)
            # Bill only what this attempt settled: a message that a delivery report or
            # another attempt settled first was billed there.
            outcomes = [o for o in outcomes if o.message_id in moved]
            await self._settle_debits(
                uow,
                captures=_charged(outcomes, credits, Charge.CAPTURED),
                releases=_charged(outcomes, credits, Charge.RELEASED),
                reason="the message could not be sent",
            )
            for at, retried in _follow_ups(outcomes).items():
                await uow.jobs.defer_many(delivery_jobs(shop_id, retried, at))
            await uow.commit()
        return outcomes

    async def _revisit_live_claims(
        self, shop_id: uuid.UUID, ids: list[uuid.UUID], claimed: Sequence[ClaimedMessage]
    ) -> None:
        """Messages another attempt holds: look again when that claim's lease ends, in case
        its worker died (a finished message is simply skipped then)."""
        taken = {c.message.id for c in claimed}
        others = [i for i in ids if i not in taken]
        async with self._uows.for_shop(shop_id) as uow:
            latest = await uow.messages.claimed_until(others)
            if latest is not None:
                await uow.jobs.defer_many(
                    delivery_jobs(shop_id, others, latest + self._limits.lease)
                )
                await uow.commit()

    async def _follow_up(self, shop_id: uuid.UUID, ids: list[uuid.UUID], at: datetime) -> None:
        """Throttled is not failed: the rest of the batch waits for its tokens."""
        async with self._uows.for_shop(shop_id) as uow:
            await uow.jobs.defer_many(delivery_jobs(shop_id, ids, at))
            await uow.commit()

    async def _take_tokens(self, shop_id: uuid.UUID, count: int) -> timedelta | None:
        for key, limit in (
            ("sms:provider", self._limits.provider),
            (f"sms:shop:{shop_id}", self._limits.shop),
        ):
            if limit is None:
                continue
            decision = await self._limiter.acquire(key, limit, count)
            if not decision.allowed:
                return timedelta(seconds=max(decision.retry_after_seconds, 0.05))
        return None

    def _chunk_size(self) -> int:
        bursts = [lim.burst for lim in (self._limits.provider, self._limits.shop) if lim]
        return max(1, min([self._limits.chunk, *bursts]))


def _charged(
    outcomes: Sequence[Outcome], credits: dict[uuid.UUID, int], charge: Charge
) -> list[tuple[uuid.UUID, int]]:
    return [(o.message_id, credits[o.message_id]) for o in outcomes if o.charge is charge]


def _refused_numbers(
    claimed: Sequence[ClaimedMessage], outcomes: Sequence[Outcome]
) -> list[tuple[uuid.UUID, str]]:
    """(contact, number) of each text the provider refused for its receiver."""
    refused = {o.message_id for o in outcomes if o.error == INVALID_NUMBER}
    return [
        (c.message.contact_id, c.message.to)
        for c in claimed
        if c.message.id in refused and c.message.contact_id is not None
    ]


def _follow_ups(outcomes: Sequence[Outcome]) -> dict[datetime, list[uuid.UUID]]:
    """Requeued texts by when their job should run: each quiet-hours wait at its own
    window start (whole minutes, so they group), every other retry at the latest."""
    waits: dict[datetime, list[uuid.UUID]] = {}
    retries: dict[uuid.UUID, datetime] = {}
    for outcome in outcomes:
        if outcome.retry_at is None:
            continue
        if outcome.error == QUIET_HOURS:
            waits.setdefault(outcome.retry_at, []).append(outcome.message_id)
        else:
            retries[outcome.message_id] = outcome.retry_at
    if retries:
        waits.setdefault(max(retries.values()), []).extend(retries)
    return waits


def _fate_unknown(claimed: ClaimedMessage) -> Outcome:
    """The provider may hold the text and cannot say: a delivery report settles it and the
    sweep expires it; sending again could deliver it twice."""
    return Outcome(claimed.message.id, MessageStatus.UNKNOWN, Charge.RESERVED, error=INTERRUPTED)


def _failed(claimed: ClaimedMessage, why: str) -> Outcome:
    return Outcome(claimed.message.id, MessageStatus.FAILED, Charge.RELEASED, error=why)
