"""ReceiveInboundText: a shopper texted the shop's number (contract sms.md §3).

STOP and its family unsubscribe and get exactly one confirmation; START/UNSTOP
re-subscribe; Y/YES confirms a pending double opt-in; HELP/INFO get the shop's help
text; anything else is kept for the merchant. A text that talks of opting out without
being a bare keyword is flagged for review: clear wording is honoured as an opt-out
(sms.md §3), and a person should see what was inferred or left alone. The number texted
decides the shop, so a STOP only ever affects the shop it was sent to. Replies are system
texts: they skip quiet hours and caps but are recorded and charged like every other
message.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from application.contacts.create_contact import ContactForPhone
from application.contacts.record_consent import ConsentChange, RecordConsent
from application.messaging.queue_messages import OutgoingMessage, QueueMessages
from application.ports import Clock, IdGenerator, PhoneNumbers, UnitOfWork, UnitOfWorkFactory
from domain.consent import ConsentSource, ConsentState, InvalidConsentTransition, OptInLevel
from domain.contacts import Contact
from domain.errors import InvalidValue
from domain.keywords import Keyword, classify, needs_review
from domain.messages import (
    OPT_IN_CONFIRMATION,
    START_CONFIRMATION,
    STOP_CONFIRMATION,
    InboundText,
    MessageCategory,
    Recipient,
    SendingPolicy,
    fill_reply,
)
from domain.shops import Shop

log = logging.getLogger("blossom.messages")


@dataclass(frozen=True, slots=True)
class InboundTextIn:
    provider_id: str | None
    sender: str  # E.164
    receiver: str  # E.164: the shop's number
    text: str
    received_at: datetime | None


@dataclass(frozen=True, slots=True)
class InboundResult:
    outcome: str  # stored, duplicate, unknown_number
    keyword: Keyword
    replied: bool = False
    needs_review: bool = False


class ReceiveInboundText:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        clock: Clock,
        ids: IdGenerator,
        phones: PhoneNumbers,
        contact_for: ContactForPhone,
        record: RecordConsent,
        queue: QueueMessages,
    ) -> None:
        self._uows = uows
        self._clock = clock
        self._ids = ids
        self._phones = phones
        self._contact_for = contact_for
        self._record = record
        self._queue = queue

    async def __call__(self, inbound: InboundTextIn) -> InboundResult:
        shop_id = await self._uows.shop_for_number(inbound.receiver)
        if shop_id is None:
            log.warning("inbound text to a number no shop claims")
            return InboundResult("unknown_number", Keyword.NONE)
        async with self._uows.for_shop(shop_id) as uow:
            shop = await uow.shops.get(shop_id)
            if shop is None:
                return InboundResult("unknown_number", Keyword.NONE)
            policy = SendingPolicy.from_settings(shop.settings)
            keyword = classify(inbound.text, policy.opt_out_words)
            contact = await uow.contacts.find(phone=inbound.sender)
            if contact is None and keyword is Keyword.OPT_OUT:
                contact = await self._suppressed(uow, inbound.sender)
            record = InboundText(
                id=self._ids.new_id(),
                shop_id=shop_id,
                contact_id=contact.id if contact else None,
                provider_id=inbound.provider_id,
                sender=inbound.sender,
                receiver=inbound.receiver,
                text=inbound.text[:1600],
                keyword=keyword.value,
                received_at=inbound.received_at or self._clock.now(),
            )
            review = needs_review(inbound.text, policy.opt_out_words)
            if not await uow.messages.add_inbound(record, needs_review=review):
                return InboundResult("duplicate", keyword)
            reply = await self._act(uow, shop, policy, keyword, contact, inbound, record)
            if reply is not None:
                await self._reply(uow, shop, contact, inbound.sender, reply, record.id)
            await uow.commit()
        return InboundResult("stored", keyword, replied=reply is not None, needs_review=review)

    async def _suppressed(self, uow: UnitOfWork, phone: str) -> Contact | None:
        """A STOP from a number we do not know still becomes an opt-out on record, so no
        later import or sync can start texting it."""
        try:
            return await self._contact_for(uow, phone)
        except InvalidValue:
            return None

    async def _act(
        self,
        uow: UnitOfWork,
        shop: Shop,
        policy: SendingPolicy,
        keyword: Keyword,
        contact: Contact | None,
        inbound: InboundTextIn,
        record: InboundText,
    ) -> str | None:
        """Apply the keyword; the reply's template, or None when nothing should be sent."""
        if keyword is Keyword.HELP:
            return policy.help_text
        if contact is None:
            return None
        state = contact.consent_state
        if keyword is Keyword.OPT_OUT:
            changed = await self._change(uow, contact, ConsentState.UNSUBSCRIBED, record)
            return STOP_CONFIRMATION if changed else None  # one confirmation, never more
        if keyword is Keyword.CONFIRM and state is ConsentState.PENDING:
            changed = await self._change(
                uow,
                contact,
                ConsentState.SUBSCRIBED,
                record,
                ConsentSource.DOUBLE_OPT_IN,
                OptInLevel.CONFIRMED_OPT_IN,
            )
            return OPT_IN_CONFIRMATION if changed else None
        resubscribe = keyword is Keyword.OPT_IN or (
            keyword is Keyword.CONFIRM and inbound.text.strip().upper().startswith("YES")
        )
        if resubscribe and state is ConsentState.UNSUBSCRIBED:
            changed = await self._change(uow, contact, ConsentState.SUBSCRIBED, record)
            return START_CONFIRMATION if changed else None
        return None

    async def _change(
        self,
        uow: UnitOfWork,
        contact: Contact,
        state: ConsentState,
        record: InboundText,
        source: ConsentSource = ConsentSource.KEYWORD,
        opt_in_level: OptInLevel | None = None,
    ) -> bool:
        try:
            event = await self._record(
                uow,
                ConsentChange(
                    contact_id=contact.id,
                    new_state=state,
                    source=source,
                    actor="shopper",
                    occurred_at=record.received_at,
                    # What the reply asked, not its words: the ledger is plain and
                    # append-only, so an erasure could never take a name out of it. The
                    # text itself stays, encrypted and erasable, on the inbound message.
                    wording=f"reply: {record.keyword}",
                    opt_in_level=opt_in_level,
                    evidence={"inbound_message_id": str(record.id)},
                ),
            )
        except InvalidConsentTransition:
            log.info("keyword refused by the consent rules", extra={"keyword": record.keyword})
            return False
        return event is not None

    async def _reply(
        self,
        uow: UnitOfWork,
        shop: Shop,
        contact: Contact | None,
        sender: str,
        template: str,
        inbound_id: uuid.UUID,
    ) -> None:
        request = OutgoingMessage(
            text=fill_reply(template, shop=shop.name, contact=shop.support_contact),
            category=MessageCategory.SYSTEM,
            source="keyword",
            idempotency_key=f"reply:{inbound_id}",
            contact_id=contact.id if contact else None,
            direct=None if contact else self._direct(sender, shop),
        )
        await self._queue(uow, shop, [request])

    def _direct(self, phone: str, shop: Shop) -> Recipient:
        try:
            return Recipient.number(self._phones.parse(phone, shop.country))
        except InvalidValue:  # queued anyway, and recorded as blocked: no usable number
            return Recipient(None, None, None, (), ConsentState.UNKNOWN)
