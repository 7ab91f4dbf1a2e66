"""`/api/v1/contacts`: list, search, read, create, tag, and the consent history."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream

from application.contacts.consent_history import consent_history
from application.contacts.create_contact import CreateContact, NewContact
from application.contacts.import_contacts import StartContactImport
from application.contacts.spreadsheet_cells import as_text
from domain.consent import ConsentState
from domain.contacts import Contact, normalize_email, normalize_tags
from interfaces.bootstrap import Container
from interfaces.http.cursors import decode_cursor, page_of, time_filter
from interfaces.http.session import CurrentShop


class ContactView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    phone: str | None
    phone_invalid: bool  # the provider refused the number: texts to it are not sent
    phone_invalid_at: datetime | None
    email: str | None
    first_name: str | None
    last_name: str | None
    shopify_customer_id: int | None
    country: str | None
    timezone: str | None  # set by the merchant
    timezones: list[str]  # where quiet hours hold; empty: in the shop's zone
    tags: list[str]
    consent_state: str
    consent_updated_at: datetime | None
    created_at: datetime | None

    @classmethod
    def of(cls, c: Contact) -> ContactView:
        return cls(
            id=c.id,
            phone=c.phone,
            phone_invalid=c.phone_invalid_at is not None,
            phone_invalid_at=c.phone_invalid_at,
            email=c.email,
            first_name=c.first_name,
            last_name=c.last_name,
            shopify_customer_id=c.shopify_customer_id,
            country=c.country,
            timezone=c.timezone,
            timezones=list(c.timezones),
            tags=list(c.tags),
            consent_state=c.consent_state.value,
            consent_updated_at=c.consent_updated_at,
            created_at=c.created_at,
        )


class ContactPage(msgspec.Struct, frozen=True):
    items: list[ContactView]
    next_cursor: str | None


class ContactIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    phone: Annotated[str, msgspec.Meta(min_length=3, max_length=32)]
    email: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    first_name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    last_name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    tags: Annotated[list[str], msgspec.Meta(max_length=50)] = []
    timezone: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class TagsIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    add: Annotated[list[str], msgspec.Meta(max_length=50)] = []
    remove: Annotated[list[str], msgspec.Meta(max_length=50)] = []


class ConsentEventView(msgspec.Struct, frozen=True):
    sequence: int
    previous_state: str
    new_state: str
    source: str
    actor: str
    occurred_at: datetime
    wording: str | None
    opt_in_level: str | None
    evidence: dict[str, str]
    hash: str


class ConsentHistoryView(msgspec.Struct, frozen=True):
    events: list[ConsentEventView]
    chain_valid: bool
    first_bad_sequence: int | None
    reason: str | None


class ImportView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    status: str
    processed: int
    imported: int
    errors: list[dict[str, object]]
    created_at: datetime
    finished_at: datetime | None


EXPORT_COLUMNS = (
    "phone",
    "email",
    "first_name",
    "last_name",
    "tags",
    "consent_state",
    "country",
    "created_at",
)


async def export_rows(container: Container, shop_id: uuid.UUID) -> AsyncIterator[str]:
    """CSV lines, a page per transaction so a large export never holds one open."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    cursor = None
    while True:
        async with container.uow.for_shop(shop_id) as uow:
            page = await uow.contacts.page(limit=500, cursor=cursor)
        for c in page:
            writer.writerow(
                [
                    c.phone,  # our own E.164: a leading + that is no formula
                    as_text(c.email),
                    as_text(c.first_name),
                    as_text(c.last_name),
                    as_text(";".join(c.tags)),
                    c.consent_state.value,
                    c.country,
                    c.created_at.isoformat() if c.created_at else "",
                ]
            )
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if len(page) < 500:
            return
        cursor = (page[-1].created_at, page[-1].id)


class ContactController(Controller):
    path = "/contacts"
    tags = ["contacts"]

    @get("/", summary="Contacts, newest first, with cursor pagination and filters")
    async def list_contacts(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
        consent_state: Annotated[ConsentState | None, QueryParameter(name="state")] = None,
        tag: FromQuery[str | None] = None,
        created_from: FromQuery[datetime | None] = None,
        created_to: FromQuery[datetime | None] = None,
    ) -> ContactPage:
        async with container.uow.for_shop(shop.id) as uow:
            found = await uow.contacts.page(
                limit=limit + 1,
                cursor=decode_cursor(cursor) if cursor else None,
                state=consent_state,
                tag=normalize_tags([tag])[0] if tag and tag.strip() else None,
                created_from=time_filter("created_from", created_from),
                created_to=time_filter("created_to", created_to),
            )
        items, cursor_after = page_of(found, limit)
        return ContactPage(items=[ContactView.of(c) for c in items], next_cursor=cursor_after)

    @get("/search", summary="Find a contact by phone or e-mail (exact, through the blind index)")
    async def search(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        phone: FromQuery[str | None] = None,
        email: FromQuery[str | None] = None,
    ) -> list[ContactView]:
        if not phone and not email:
            raise ValidationException(detail="give phone or email")
        e164 = container.phones.parse(phone, shop.country).e164 if phone else None
        async with container.uow.for_shop(shop.id) as uow:
            found = await uow.contacts.find(phone=e164, email=normalize_email(email))
        return [ContactView.of(found)] if found else []

    @post("/imports", status_code=202, summary="Start a CSV import (text/csv body)")
    async def start_import(
        self, request: Request, shop: CurrentShop, container: NamedDependency[Container]
    ) -> dict[str, str]:
        try:
            csv_text = (await request.body()).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationException(detail="the CSV must be UTF-8") from None
        async with container.uow.for_shop(shop.id) as uow:
            import_id = await StartContactImport(container.ids)(uow, csv_text)
            await uow.audit.record(
                action="contacts.import_started", actor="admin", subject=str(import_id)
            )
            await uow.commit()
        return {"id": str(import_id), "status": "queued"}

    @get("/imports/{import_id:uuid}", summary="Progress and per-line errors of an import")
    async def get_import(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        import_id: FromPath[uuid.UUID],
    ) -> ImportView:
        async with container.uow.for_shop(shop.id) as uow:
            found = await uow.imports.get(import_id)
        if found is None:
            raise NotFoundException(detail="import not found")
        return ImportView(
            id=found.id,
            status=found.status.value,
            processed=found.processed,
            imported=found.imported,
            errors=found.errors,
            created_at=found.created_at,
            finished_at=found.finished_at,
        )

    @get("/export", summary="Every contact as CSV")
    async def export(self, shop: CurrentShop, container: NamedDependency[Container]) -> Stream:
        return Stream(
            export_rows(container, shop.id),
            media_type="text/csv",
            headers={
                "Content-Disposition": 'attachment; filename="contacts.csv"',
                "Cache-Control": "no-store",
            },
        )

    @get("/{contact_id:uuid}", summary="One contact")
    async def get_contact(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        contact_id: FromPath[uuid.UUID],
    ) -> ContactView:
        async with container.uow.for_shop(shop.id) as uow:
            contact = await uow.contacts.get(contact_id)
        if contact is None:
            raise NotFoundException(detail="contact not found")
        return ContactView.of(contact)

    @post("/", summary="Create a contact (no consent is implied)")
    async def create_contact(
        self, shop: CurrentShop, container: NamedDependency[Container], data: JSONBody[ContactIn]
    ) -> ContactView:
        create = CreateContact(container.phones, container.clock, container.ids)
        async with container.uow.for_shop(shop.id) as uow:
            contact = await create(
                uow,
                NewContact(
                    phone=data.phone,
                    email=data.email,
                    first_name=data.first_name,
                    last_name=data.last_name,
                    tags=tuple(data.tags),
                    timezone=data.timezone,
                ),
            )
            await uow.audit.record(action="contact.created", actor="admin", subject=str(contact.id))
            await uow.commit()
        return ContactView.of(contact)

    @patch("/{contact_id:uuid}/tags", summary="Add and remove tags")
    async def update_tags(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        contact_id: FromPath[uuid.UUID],
        data: JSONBody[TagsIn],
    ) -> ContactView:
        add, remove = normalize_tags(data.add), set(normalize_tags(data.remove))
        async with container.uow.for_shop(shop.id) as uow:
            contact = await uow.contacts.get(contact_id, for_update=True)
            if contact is None:
                raise NotFoundException(detail="contact not found")
            contact.tags = [t for t in normalize_tags([*contact.tags, *add]) if t not in remove]
            await uow.contacts.save(contact, container.clock.now())
            await uow.commit()
        return ContactView.of(contact)

    @get("/{contact_id:uuid}/consent", summary="The consent ledger and its chain verification")
    async def consent(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        contact_id: FromPath[uuid.UUID],
    ) -> ConsentHistoryView:
        async with container.uow.for_shop(shop.id) as uow:
            history = await consent_history(uow, contact_id)
        return ConsentHistoryView(
            events=[
                ConsentEventView(
                    sequence=e.sequence,
                    previous_state=e.previous_state.value,
                    new_state=e.new_state.value,
                    source=e.source.value,
                    actor=e.actor,
                    occurred_at=e.occurred_at,
                    wording=e.wording,
                    opt_in_level=e.opt_in_level.value if e.opt_in_level else None,
                    evidence=dict(e.evidence),
                    hash=e.hash,
                )
                for e in history.events
            ],
            chain_valid=history.verification.valid,
            first_bad_sequence=history.verification.first_bad_sequence,
            reason=history.verification.reason,
        )
