"""Record a consent change: one ledger event and the contact's current state, together."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from application.ports import Clock, UnitOfWork
from application.tasks import PUSH_CONSENT
from domain.consent import ConsentEvent, ConsentSource, ConsentState, OptInLevel, next_event
from domain.errors import NotFound

# Changes that came from Shopify (directly, or through its checkout) are never pushed
# back: Shopify already holds them, and pushing would loop.
NOT_PUSHED = frozenset({ConsentSource.SHOPIFY, ConsentSource.CHECKOUT})


@dataclass(frozen=True, slots=True)
class ConsentChange:
    contact_id: uuid.UUID
    new_state: ConsentState
    source: ConsentSource
    actor: str
    occurred_at: datetime | None = None
    wording: str | None = None
    ip_hash: str | None = None
    user_agent: str | None = None
    opt_in_level: OptInLevel | None = None
    evidence: Mapping[str, str] = field(default_factory=dict)


class RecordConsent:
    """Runs inside the caller's unit of work, so the change commits with whatever caused it.

    The contact row is locked first: two changes for one contact are serialized, and the
    hash chain never forks.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    async def __call__(self, uow: UnitOfWork, change: ConsentChange) -> ConsentEvent | None:
        contact = await uow.contacts.get(change.contact_id, for_update=True)
        if contact is None:
            raise NotFound("contact not found")
        now = self._clock.now()
        event = next_event(
            await uow.consent.tail(contact.id),
            contact_id=contact.id,
            current_state=contact.consent_state,
            new_state=change.new_state,
            source=change.source,
            actor=change.actor,
            occurred_at=change.occurred_at or now,
            wording=change.wording,
            ip_hash=change.ip_hash,
            user_agent=change.user_agent,
            opt_in_level=change.opt_in_level,
            evidence=change.evidence,
        )
        if event is None:
            return None
        await uow.consent.append([event])
        contact.consent_state = event.new_state
        contact.consent_updated_at = event.occurred_at
        await uow.contacts.save(contact, now)
        if change.source not in NOT_PUSHED and contact.shopify_customer_id is not None:
            await uow.jobs.defer(
                PUSH_CONSENT.job(
                    {"shop_id": str(contact.shop_id), "contact_id": str(contact.id)},
                    queueing_lock=f"consent-push:{contact.id}",
                )
            )
        return event
