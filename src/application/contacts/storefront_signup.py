"""Storefront sign-up: a shopper asks for texts on the shop's own page.

With double opt-in (the default) the contact becomes `pending` until they reply Y or
open the confirmation link; the pending event is the record of the request, and the
"reply Y" text with the link is queued in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from application.contacts.create_contact import ContactForPhone
from application.contacts.record_consent import ConsentChange, RecordConsent
from application.messaging.queue_messages import OutgoingMessage, QueueMessages
from application.ports import UnitOfWork
from domain.consent import ConsentEvent, ConsentSource, ConsentState, OptInLevel
from domain.contacts import Contact
from domain.errors import InvalidValue
from domain.messages import DOUBLE_OPT_IN_REQUEST, MessageCategory
from domain.shops import Shop

DEFAULT_WORDING = (
    "By checking this box I agree to receive recurring automated marketing text messages "
    "from {shop} at the number provided. Consent is not a condition of purchase. Msg "
    "frequency varies. Msg & data rates may apply. Reply HELP for help and STOP to cancel."
)


# The form proves nothing about who owns the number typed into it, so asking again while a
# sign-up is pending texts that phone again at most this often: otherwise anyone could make
# the shop text a stranger (or a number that texted STOP) with every submission.
CONFIRMATION_RESEND_AFTER = timedelta(hours=24)


# sms.md §6: the sign-up links terms and privacy. Every Shopify store serves its policies at
# these paths, and the form is served on the store's own domain through the app proxy.
POLICY_LINKS = (
    ("Terms of Service", "/policies/terms-of-service"),
    ("Privacy Policy", "/policies/privacy-policy"),
)


def consent_wording(shop_name: str, settings: dict[str, object]) -> str:
    """The label beside the box, as shown."""
    template = str(settings.get("consent_wording") or DEFAULT_WORDING)
    return template.replace("{shop}", shop_name)


def recorded_wording(shop_name: str, settings: dict[str, object]) -> str:
    """What the ledger keeps of the form: the label and the policy links shown under it."""
    links = " · ".join(f"{text} ({path})" for text, path in POLICY_LINKS)
    return f"{consent_wording(shop_name, settings)}\n{links}"


@dataclass(frozen=True, slots=True)
class SignUp:
    phone: str
    consented: bool
    wording: str
    ip_hash: str | None
    user_agent: str | None
    double_opt_in: bool = True


@dataclass(frozen=True, slots=True)
class SignUpResult:
    contact: Contact
    event: ConsentEvent | None


class StorefrontSignUp:
    def __init__(
        self,
        contact_for: ContactForPhone,
        record: RecordConsent,
        queue: QueueMessages,
        confirm_link: Callable[[Shop, uuid.UUID], str],
    ) -> None:
        self._contact_for = contact_for
        self._record = record
        self._queue = queue
        self._confirm_link = confirm_link

    async def __call__(self, uow: UnitOfWork, shop: Shop, request: SignUp) -> SignUpResult:
        if not request.consented:
            raise InvalidValue("please tick the box to agree to receive texts")
        contact = await self._contact_for(uow, request.phone)
        if contact.consent_state is ConsentState.SUBSCRIBED:
            return SignUpResult(contact, None)  # already on the list: nothing to record
        # The form proves nothing about who owns the number: lifting a STOP takes a reply
        # from the phone itself, whether or not the shop asks newcomers to confirm. A pending
        # number stays pending too: its first submission may have been one lifting a STOP,
        # and a second must not count as the single opt-in the shop grants newcomers.
        confirm = request.double_opt_in or contact.consent_state in (
            ConsentState.UNSUBSCRIBED,
            ConsentState.PENDING,
        )
        target = ConsentState.PENDING if confirm else ConsentState.SUBSCRIBED
        event = await self._record(
            uow,
            ConsentChange(
                contact_id=contact.id,
                new_state=target,
                source=ConsentSource.STOREFRONT_FORM,
                actor="shopper",
                wording=request.wording,
                ip_hash=request.ip_hash,
                user_agent=(request.user_agent or "")[:300] or None,
                opt_in_level=None if confirm else OptInLevel.SINGLE_OPT_IN,
            ),
        )
        if event is not None and event.new_state is ConsentState.PENDING:
            await self._ask_to_confirm(uow, shop, contact, event)
        return SignUpResult(contact, event)

    async def _ask_to_confirm(
        self, uow: UnitOfWork, shop: Shop, contact: Contact, event: ConsentEvent
    ) -> None:
        text = DOUBLE_OPT_IN_REQUEST.replace("{shop}", shop.name)
        # Every request carries the contact's key; only a renewal (still pending) looks back
        # for it. A new sign-up (after a STOP, say) always gets its own text: window zero.
        renewal = event.previous_state is ConsentState.PENDING
        await self._queue(
            uow,
            shop,
            [
                OutgoingMessage(
                    text=f"{text} {self._confirm_link(shop, contact.id)}",
                    category=MessageCategory.SYSTEM,
                    source="double_opt_in",
                    idempotency_key=f"double-opt-in:{contact.id}:{event.sequence}",
                    contact_id=contact.id,
                    dedupe_key=f"double-opt-in:{contact.id}",
                    dedupe_window=CONFIRMATION_RESEND_AFTER if renewal else timedelta(0),
                )
            ],
        )
