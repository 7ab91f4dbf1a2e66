"""Contacts and the consent ledger: PII sealed with the cipher, looked up by blind index."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import GUID, DateTimeUTC, JsonB
from sqlalchemy import (
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    Select,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    and_,
    any_,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from application.contacts.import_contacts import ContactImport, ImportReport, ImportState
from application.ports import BlindIndex, Cipher
from domain.consent import ConsentEvent, ConsentSource, ConsentState, OptInLevel
from domain.contacts import Contact, sending_zones
from domain.messages import Recipient

PHONE, EMAIL = "phone", "email"


class ContactModel(UUIDv7Base):
    __tablename__ = "contacts"
    __table_args__ = (
        Index(
            "uq_contacts_shop_phone",
            "shop_id",
            "phone_index",
            unique=True,
            postgresql_where=text("phone_index IS NOT NULL"),
        ),
        Index(
            "uq_contacts_shop_customer",
            "shop_id",
            "shopify_customer_id",
            unique=True,
            postgresql_where=text("shopify_customer_id IS NOT NULL"),
        ),
        Index("ix_contacts_shop_email", "shop_id", "email_index"),
        Index("ix_contacts_shop_state_created", "shop_id", "consent_state", "created_at"),
        Index("ix_contacts_shop_created", "shop_id", "created_at", "id"),
        # What rows naming a contact refer to, so that they can only name their own shop's.
        UniqueConstraint("shop_id", "id", name="uq_contacts_shop_id"),
    )

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    phone: Mapped[str | None] = mapped_column(Text)
    phone_index: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(Text)
    email_index: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    shopify_customer_id: Mapped[int | None] = mapped_column(BigInteger)
    country: Mapped[str | None] = mapped_column(String(2))
    timezone: Mapped[str | None] = mapped_column(String(64))
    address_timezone: Mapped[str | None] = mapped_column(String(64))
    phone_timezones: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    locale: Mapped[str | None] = mapped_column(String(16))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    consent_state: Mapped[str] = mapped_column(String(16), server_default="unknown")
    consent_updated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    shopify_updated_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    redacted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    phone_invalid_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class ConsentEventModel(UUIDv7Base):
    __tablename__ = "consent_events"
    __table_args__ = (
        UniqueConstraint("contact_id", "sequence", name="uq_consent_events_contact_sequence"),
        Index("ix_consent_events_shop_contact", "shop_id", "contact_id", "sequence"),
        # With the shop: a key on the id alone is checked past row-level security (0019).
        ForeignKeyConstraint(
            ["shop_id", "contact_id"],
            ["contacts.shop_id", "contacts.id"],
            name="fk_consent_events_shop_contact",
            ondelete="CASCADE",
        ),
    )

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID] = mapped_column(GUID(length=16))
    sequence: Mapped[int] = mapped_column(Integer)
    previous_state: Mapped[str] = mapped_column(String(16))
    new_state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    wording: Mapped[str | None] = mapped_column(Text)
    ip_hash: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(Text)
    opt_in_level: Mapped[str | None] = mapped_column(String(32))
    evidence: Mapped[dict[str, Any]] = mapped_column(JsonB, server_default="{}")
    previous_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=func.now()
    )


@dataclass(frozen=True, slots=True)
class ContactPage:
    contacts: list[Contact]
    next_cursor: str | None


# Contacts locked in id order, so two deliveries marking the same contacts cannot deadlock;
# the phone is compared again once the row is locked, so a number changed meanwhile is
# left alone. NO KEY UPDATE, what a plain UPDATE takes: messages being inserted for the
# contact (a foreign-key share lock) do not wait for it.
_MARK_PHONES_INVALID = text(
    """
    WITH refused AS (
        SELECT c.id FROM contacts c
          JOIN unnest(CAST(:ids AS uuid[]), CAST(:phone_indexes AS varchar[]))
               AS u(id, phone_index) ON c.id = u.id AND c.phone_index = u.phone_index
         WHERE c.shop_id = :shop_id AND c.phone_invalid_at IS NULL
         ORDER BY c.id
           FOR NO KEY UPDATE OF c
    )
    UPDATE contacts c SET phone_invalid_at = :at, updated_at = :at
      FROM refused WHERE c.id = refused.id
    """
)


class SqlContacts:
    """Every query names the shop; PII columns are sealed per contact and field."""

    def __init__(
        self, session: AsyncSession, shop_id: uuid.UUID | None, cipher: Cipher, index: BlindIndex
    ) -> None:
        self._session = session
        self._shop_id = shop_id
        self._cipher = cipher
        self._index = index

    def _scoped(self, query: Any) -> Any:
        return query.where(ContactModel.shop_id == self._shop_id)

    async def get(self, contact_id: uuid.UUID, *, for_update: bool = False) -> Contact | None:
        query = self._scoped(select(ContactModel)).where(ContactModel.id == contact_id)
        row = (
            await self._session.scalars(query.with_for_update() if for_update else query)
        ).first()
        return self._to_domain(row) if row else None

    async def find(
        self,
        *,
        phone: str | None = None,
        email: str | None = None,
        shopify_customer_id: int | None = None,
        for_update: bool = False,
    ) -> Contact | None:
        """The contact matching any given key, preferring the Shopify id, then the phone."""
        conditions = []
        if shopify_customer_id is not None:
            conditions.append(ContactModel.shopify_customer_id == shopify_customer_id)
        if phone:
            conditions.append(ContactModel.phone_index == self._index.digest(phone, purpose=PHONE))
        if email:
            conditions.append(ContactModel.email_index == self._index.digest(email, purpose=EMAIL))
        if not conditions:
            return None
        rank = case(*((condition, i) for i, condition in enumerate(conditions)), else_=99)
        query = (
            self._scoped(select(ContactModel))
            .where(or_(*conditions))
            .order_by(rank, ContactModel.created_at)
            .limit(1)
        )
        row = (
            await self._session.scalars(query.with_for_update() if for_update else query)
        ).first()
        return self._to_domain(row) if row else None

    async def add(self, contact: Contact, now: datetime) -> None:
        await self._session.execute(
            insert(ContactModel).values(
                id=contact.id,
                shop_id=self._shop_id,
                created_at=now,
                updated_at=now,
                **self._columns(contact),
            )
        )

    async def add_many(self, contacts: Sequence[Contact], now: datetime) -> None:
        if contacts:
            await self._session.execute(
                insert(ContactModel),
                [
                    {
                        "id": c.id,
                        "shop_id": self._shop_id,
                        "created_at": now,
                        "updated_at": now,
                        **self._columns(c),
                    }
                    for c in contacts
                ],
            )

    async def save(self, contact: Contact, now: datetime) -> None:
        columns = self._columns(contact)
        # The provider refused the number it was given, not whatever number comes next.
        same_phone = ContactModel.phone_index == columns["phone_index"]
        await self._session.execute(
            self._scoped(update(ContactModel))
            .where(ContactModel.id == contact.id)
            .values(
                updated_at=now,
                phone_invalid_at=case((same_phone, ContactModel.phone_invalid_at), else_=None),
                **columns,
            )
        )

    async def page(
        self,
        *,
        limit: int,
        cursor: tuple[datetime, uuid.UUID] | None = None,
        state: ConsentState | None = None,
        tag: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> list[Contact]:
        """Newest first, keyed on (created_at, id) so pages never skip or repeat."""
        query = self._scoped(select(ContactModel))
        if cursor is not None:
            at, last_id = cursor
            query = query.where(
                or_(
                    ContactModel.created_at < at,
                    and_(ContactModel.created_at == at, ContactModel.id < last_id),
                )
            )
        if state is not None:
            query = query.where(ContactModel.consent_state == state.value)
        if tag:
            query = query.where(ContactModel.tags.any(tag))
        if created_from:
            query = query.where(ContactModel.created_at >= created_from)
        if created_to:
            query = query.where(ContactModel.created_at < created_to)
        query = query.order_by(ContactModel.created_at.desc(), ContactModel.id.desc()).limit(limit)
        return [self._to_domain(row) for row in await self._session.scalars(query)]

    def _columns(self, contact: Contact) -> dict[str, Any]:
        seal = self._seal
        return {
            "phone": seal(contact, PHONE, contact.phone),
            "phone_index": self._index.digest(contact.phone, purpose=PHONE)
            if contact.phone
            else None,
            "email": seal(contact, EMAIL, contact.email),
            "email_index": self._index.digest(contact.email, purpose=EMAIL)
            if contact.email
            else None,
            "first_name": seal(contact, "first_name", contact.first_name),
            "last_name": seal(contact, "last_name", contact.last_name),
            "shopify_customer_id": contact.shopify_customer_id,
            "country": contact.country,
            "timezone": contact.timezone,
            "address_timezone": contact.address_timezone,
            "phone_timezones": list(contact.phone_timezones),
            "locale": contact.locale,
            "tags": list(contact.tags),
            "consent_state": contact.consent_state.value,
            "consent_updated_at": contact.consent_updated_at,
            "shopify_updated_at": contact.shopify_updated_at,
            "redacted_at": contact.redacted_at,
        }

    def _seal(self, contact: Contact, field: str, value: str | None) -> str | None:
        if value is None:
            return None
        return self._cipher.encrypt(value, context=f"contacts.{field}:{contact.id}")

    def _open(self, row: ContactModel, field: str) -> str | None:
        value = getattr(row, field)
        if value is None:
            return None
        return self._cipher.decrypt(value, context=f"contacts.{field}:{row.id}")

    def _to_domain(self, row: ContactModel) -> Contact:
        return Contact(
            id=row.id,
            shop_id=row.shop_id,
            phone=self._open(row, PHONE),
            email=self._open(row, EMAIL),
            first_name=self._open(row, "first_name"),
            last_name=self._open(row, "last_name"),
            shopify_customer_id=row.shopify_customer_id,
            country=row.country,
            timezone=row.timezone,
            address_timezone=row.address_timezone,
            phone_timezones=tuple(row.phone_timezones or ()),
            locale=row.locale,
            tags=list(row.tags or []),
            consent_state=ConsentState(row.consent_state),
            consent_updated_at=row.consent_updated_at,
            shopify_updated_at=row.shopify_updated_at,
            created_at=row.created_at,
            redacted_at=row.redacted_at,
            phone_invalid_at=row.phone_invalid_at,
        )

    async def recipients(self, contact_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Recipient]:
        """What the sending gates need for each contact, in one query."""
        rows = await self._session.execute(
            self._scoped(
                select(
                    ContactModel.id,
                    ContactModel.phone,
                    ContactModel.country,
                    ContactModel.timezone,
                    ContactModel.address_timezone,
                    ContactModel.phone_timezones,
                    ContactModel.consent_state,
                    ContactModel.phone_invalid_at,
                )
            ).where(ContactModel.id == any_(literal(list(contact_ids), ARRAY(Uuid))))
        )
        decrypt = self._cipher.decrypt
        return {
            r.id: Recipient(
                contact_id=r.id,
                phone=decrypt(r.phone, context=f"contacts.{PHONE}:{r.id}") if r.phone else None,
                country=r.country,
                timezones=sending_zones(r.timezone, r.address_timezone, r.phone_timezones),
                consent_state=ConsentState(r.consent_state),
                phone_invalid=r.phone_invalid_at is not None,
            )
            for r in rows
        }

    async def mark_phones_invalid(
        self, refused: Sequence[tuple[uuid.UUID, str]], at: datetime
    ) -> None:
        if not refused:
            return
        await self._session.execute(
            _MARK_PHONES_INVALID,
            {
                "shop_id": self._shop_id,
                "ids": [contact_id for contact_id, _ in refused],
                "phone_indexes": [self._index.digest(p, purpose=PHONE) for _, p in refused],
                "at": at,
            },
        )

    async def matching(
        self,
        *,
        phones: Sequence[str] = (),
        emails: Sequence[str] = (),
        shopify_customer_ids: Sequence[int] = (),
    ) -> list[Contact]:
        """Every contact any key names: an e-mail may be shared, so `find` is not enough."""
        conditions = []
        if shopify_customer_ids:
            conditions.append(ContactModel.shopify_customer_id.in_(shopify_customer_ids))
        if phones:
            digests = [self._index.digest(phone, purpose=PHONE) for phone in phones]
            conditions.append(ContactModel.phone_index.in_(digests))
        if emails:
            digests = [self._index.digest(email, purpose=EMAIL) for email in emails]
            conditions.append(ContactModel.email_index.in_(digests))
        if not conditions:
            return []
        query = (
            self._scoped(select(ContactModel))
            .where(or_(*conditions))
            .order_by(ContactModel.created_at, ContactModel.id)
        )
        return [self._to_domain(row) for row in await self._session.scalars(query)]

    async def redact(self, contact_id: uuid.UUID, now: datetime) -> None:
        """Keep only a tombstone: the id the consent ledger points at, and the state.

        Every identifier goes, the blind indexes too: a kept index would tie the number
        to the tombstone, and its terminal `redacted` state would block a future opt-in.
        """
        await self._session.execute(
            self._scoped(update(ContactModel))
            .where(ContactModel.id == contact_id)
            .values(
                phone=None,
                phone_index=None,
                email=None,
                email_index=None,
                first_name=None,
                last_name=None,
                shopify_customer_id=None,
                country=None,
                timezone=None,
                address_timezone=None,
                phone_timezones=[],
                locale=None,
                tags=[],
                consent_state=ConsentState.REDACTED.value,
                consent_updated_at=func.coalesce(ContactModel.redacted_at, now),
                shopify_updated_at=None,
                phone_invalid_at=None,
                redacted_at=func.coalesce(ContactModel.redacted_at, now),
                updated_at=now,
            )
        )


class SqlConsentLedger:
    def __init__(self, session: AsyncSession, shop_id: uuid.UUID | None) -> None:
        self._session = session
        self._shop_id = shop_id

    async def history(self, contact_id: uuid.UUID) -> list[ConsentEvent]:
        query = (
            select(ConsentEventModel)
            .where(
                ConsentEventModel.shop_id == self._shop_id,
                ConsentEventModel.contact_id == contact_id,
            )
            .order_by(ConsentEventModel.sequence)
        )
        return [_event(row) for row in await self._session.scalars(query)]

    async def tail(self, contact_id: uuid.UUID) -> ConsentEvent | None:
        query = (
            select(ConsentEventModel)
            .where(
                ConsentEventModel.shop_id == self._shop_id,
                ConsentEventModel.contact_id == contact_id,
            )
            .order_by(ConsentEventModel.sequence.desc())
            .limit(1)
        )
        row = (await self._session.scalars(query)).first()
        return _event(row) if row else None

    async def append(self, events: Sequence[ConsentEvent]) -> None:
        if not events:
            return
        await self._session.execute(
            insert(ConsentEventModel),
            [
                {
                    "id": uuid7(),
                    "shop_id": self._shop_id,
                    "contact_id": e.contact_id,
                    "sequence": e.sequence,
                    "previous_state": e.previous_state.value,
                    "new_state": e.new_state.value,
                    "source": e.source.value,
                    "actor": e.actor,
                    "occurred_at": e.occurred_at,
                    "wording": e.wording,
                    "ip_hash": e.ip_hash,
                    "user_agent": e.user_agent,
                    "opt_in_level": e.opt_in_level.value if e.opt_in_level else None,
                    "evidence": dict(e.evidence),
                    "previous_hash": e.previous_hash,
                    "hash": e.hash,
                }
                for e in events
            ],
        )


def _event(row: ConsentEventModel) -> ConsentEvent:
    return ConsentEvent(
        contact_id=row.contact_id,
        sequence=row.sequence,
        previous_state=ConsentState(row.previous_state),
        new_state=ConsentState(row.new_state),
        source=ConsentSource(row.source),
        actor=row.actor,
        occurred_at=row.occurred_at,
        wording=row.wording,
        ip_hash=row.ip_hash,
        user_agent=row.user_agent,
        opt_in_level=OptInLevel(row.opt_in_level) if row.opt_in_level else None,
        evidence=dict(row.evidence or {}),
        previous_hash=row.previous_hash,
        hash=row.hash,
    )


class ContactImportModel(UUIDv7Base):
    __tablename__ = "contact_imports"
    __table_args__ = (Index("ix_contact_imports_shop_created", "shop_id", "created_at"),)

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(Text)
    processed: Mapped[int] = mapped_column(Integer, server_default="0")
    imported: Mapped[int] = mapped_column(Integer, server_default="0")
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JsonB, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=func.now()
    )
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class SqlContactImports:
    """The uploaded CSV is sealed like any PII and dropped once the import finishes."""

    def __init__(self, session: AsyncSession, shop_id: uuid.UUID | None, cipher: Cipher) -> None:
        self._session = session
        self._shop_id = shop_id
        self._cipher = cipher

    async def create(self, import_id: uuid.UUID, csv_text: str) -> None:
        await self._session.execute(
            insert(ContactImportModel).values(
                id=import_id,
                shop_id=self._shop_id,
                status=ImportState.QUEUED.value,
                source=self._seal(import_id, csv_text),
            )
        )

    async def get(self, import_id: uuid.UUID, *, for_update: bool = False) -> ContactImport | None:
        query = self._select().where(ContactImportModel.id == import_id)
        row = (
            await self._session.scalars(query.with_for_update() if for_update else query)
        ).first()
        return self._entity(row) if row else None

    async def lock_unfinished(self) -> list[ContactImport]:
        rows = await self._session.scalars(
            self._select()
            .where(ContactImportModel.source.is_not(None))
            .order_by(ContactImportModel.id)  # one order for every locker: no deadlock
            .with_for_update()
        )
        return [self._entity(row) for row in rows]

    async def replace_file(self, import_id: uuid.UUID, csv_text: str) -> None:
        await self._session.execute(
            update(ContactImportModel)
            .where(ContactImportModel.shop_id == self._shop_id, ContactImportModel.id == import_id)
            .values(source=self._seal(import_id, csv_text))
        )

    def _select(self) -> Select[tuple[ContactImportModel]]:
        # A read after waiting for a lock must see the row its holder left, not a copy the
        # session loaded before.
        return (
            select(ContactImportModel)
            .where(ContactImportModel.shop_id == self._shop_id)
            .execution_options(populate_existing=True)
        )

    def _seal(self, import_id: uuid.UUID, csv_text: str) -> str:
        return self._cipher.encrypt(csv_text, context=f"contact_imports:{import_id}")

    def _entity(self, row: ContactImportModel) -> ContactImport:
        return ContactImport(
            id=row.id,
            status=ImportState(row.status),
            processed=row.processed,
            imported=row.imported,
            errors=list(row.errors or []),
            created_at=row.created_at,
            finished_at=row.finished_at,
            csv_text=(
                self._cipher.decrypt(row.source, context=f"contact_imports:{row.id}")
                if row.source
                else None
            ),
        )

    async def update(
        self, import_id: uuid.UUID, state: ImportState, report: ImportReport, now: datetime
    ) -> None:
        finished = state in (ImportState.DONE, ImportState.FAILED)
        values: dict[str, Any] = {
            "status": state.value,
            "processed": report.processed,
            "imported": report.imported,
            "errors": report.errors,
        }
        if finished:
            values.update(source=None, finished_at=now)
        await self._session.execute(
            update(ContactImportModel)
            .where(ContactImportModel.shop_id == self._shop_id, ContactImportModel.id == import_id)
            .values(**values)
        )
