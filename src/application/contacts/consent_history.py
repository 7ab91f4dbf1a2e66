"""A contact's consent ledger with the result of verifying its hash chain."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from application.ports import UnitOfWork
from domain.consent import ChainVerification, ConsentEvent, verify_chain
from domain.errors import NotFound


@dataclass(frozen=True, slots=True)
class ConsentHistory:
    events: list[ConsentEvent]
    verification: ChainVerification


async def consent_history(uow: UnitOfWork, contact_id: uuid.UUID) -> ConsentHistory:
    if await uow.contacts.get(contact_id) is None:
        raise NotFound("contact not found")
    events = await uow.consent.history(contact_id)
    return ConsentHistory(events=events, verification=verify_chain(events))
