"""`customers/redact`: erase one customer's personal data everywhere we hold it.

- Contacts become tombstones (`SqlContacts.redact`): the id the ledger points at and the
  state `redacted`, nothing that identifies the person.
- The consent ledger is append-only (and its proof may be a legal hold, contract U3): it
  gets a final `redacted` event and keeps the rest, which hold no PII by construction —
  writers put ids and Shopify times in evidence, never a phone or an e-mail, and IPs are
  hashed.
- Webhook payloads that name the person are deleted from the inbox (they are sealed, but
  sealed PII is still PII, and a pending `customers/update` would re-create the contact).
  Compliance deliveries stay: they are the requests' own record and leave with the inbox
  retention.
- Texts sent to or from the person keep their rows but lose number and wording, found by
  contact and by the person's numbers: a number can text the shop, and get the HELP reply,
  before it becomes a contact, and may never become one.
- Earlier requests about the person lose their subject and export bundle; so does this
  one once fulfilled. The audit log only ever held ids and counts.
- Contact imports not finished yet lose the person's rows (by phone or e-mail, read as the
  import reads them), or their job would create the person again. A file uploaded after
  the erasure is the merchant's new act, and may add them again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

from application.contacts.import_contacts import ContactImport, erase_rows
from application.gdpr.requests import record_fulfilled
from application.gdpr.subjects import Identity, correspondent, find_subject
from application.ports import Clock, PhoneNumbers, UnitOfWork
from domain.consent import ConsentSource, ConsentState, next_event
from domain.contacts import Contact
from domain.events import COMPLIANCE_TOPICS
from domain.gdpr import GdprRequest, RequestKind, Subject

LEDGER_ACTOR = "shopify:customers/redact"
_BATCH = 200


class RedactCustomer:
    """Runs inside the caller's unit of work. Every step is idempotent, so a retry after a
    partial attempt finishes the job."""

    def __init__(self, phones: PhoneNumbers, clock: Clock) -> None:
        self._phones = phones
        self._clock = clock

    async def __call__(self, uow: UnitOfWork, request: GdprRequest, *, actor: str) -> None:
        shop = await uow.shops.get(request.shop_id)
        region = shop.country if shop else None
        # Taken before the contacts are looked up: a batch holds its import until it has
        # written its contacts, so whatever one created is found and erased below.
        imports = await uow.imports.lock_unfinished()
        contacts, identity = await find_subject(uow, request.subject, self._phones, region)
        now = self._clock.now()
        messages = await uow.messages.redact_correspondent(correspondent(contacts, identity))
        for contact in contacts:
            await self._erase_contact(uow, contact, request.id)
            await uow.contacts.redact(contact.id, now)
        events = await self._forget_inbox(uow, identity, region)
        requests = await self._forget_requests(uow, identity, region, request)
        import_rows = await self._forget_imports(uow, imports, identity, region)
        await record_fulfilled(
            uow,
            request,
            now,
            actor=actor,
            details={
                "contacts": len(contacts),
                "messages": messages,
                "webhook_events": events,
                "requests": requests,
                "import_rows": import_rows,
            },
        )
        await uow.gdpr.erase_personal_data([request.id])

    async def _erase_contact(
        self, uow: UnitOfWork, contact: Contact, request_id: uuid.UUID
    ) -> None:
        # Locked like RecordConsent does, so a concurrent consent change cannot fork the chain.
        await uow.contacts.get(contact.id, for_update=True)
        tail = await uow.consent.tail(contact.id)
        event = next_event(
            tail,
            contact_id=contact.id,
            # The ledger, not the cached state, is what the new event must chain onto.
            current_state=tail.new_state if tail else ConsentState.UNKNOWN,
            new_state=ConsentState.REDACTED,
            source=ConsentSource.SHOPIFY,
            actor=LEDGER_ACTOR,
            occurred_at=self._clock.now(),
            evidence={"gdpr_request_id": str(request_id)},
        )
        if event is not None:  # None: already redacted by an earlier attempt
            await uow.consent.append([event])

    async def _forget_inbox(self, uow: UnitOfWork, identity: Identity, region: str | None) -> int:
        deleted = 0
        after: uuid.UUID | None = None
        while batch := await uow.webhooks.payloads(after=after, limit=_BATCH):
            after = batch[-1][0].id
            doomed = [
                event.id
                for event, payload in batch
                if event.topic not in COMPLIANCE_TOPICS
                and identity.mentioned_in(event.topic, _json(payload), self._phones, region)
            ]
            deleted += await uow.webhooks.delete(doomed)
        return deleted

    async def _forget_requests(
        self, uow: UnitOfWork, identity: Identity, region: str | None, current: GdprRequest
    ) -> int:
        about_them: list[uuid.UUID] = []
        before: uuid.UUID | None = None
        while page := await uow.gdpr.page(limit=_BATCH, before=before):
            before = page[-1].id
            about_them.extend(
                r.id
                for r in page
                if r.id != current.id
                and r.kind is not RequestKind.SHOP_REDACT
                and identity.shares_a_key_with(Identity.of(r.subject, self._phones, region))
            )
        await uow.gdpr.erase_personal_data(about_them)
        return len(about_them)

    async def _forget_imports(
        self,
        uow: UnitOfWork,
        imports: list[ContactImport],
        identity: Identity,
        region: str | None,
    ) -> int:
        def theirs(row: Mapping[str, str]) -> bool:
            listed = Subject(phone=row.get("phone"), email=row.get("email"))
            return identity.shares_a_key_with(Identity.of(listed, self._phones, region))

        erased = 0
        for pending in imports:
            if pending.csv_text is None:
                continue
            kept, rows = erase_rows(pending.csv_text, theirs)
            if rows:
                await uow.imports.replace_file(pending.id, kept)
            erased += rows
        return erased


def _json(payload: bytes) -> object:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", errors="replace")  # still searched, as plain text
