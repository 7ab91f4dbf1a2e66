"""Messages, their status history, provider reports and inbound texts.

Hot paths are set-based: a batch of messages is inserted, claimed and settled with one
statement each (parallel arrays unnested into rows), never a statement per message.
Phone numbers and texts are encrypted at rest like every other piece of personal data.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import (
    ARRAY,
    Boolean,
    ColumnElement,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    any_,
    false,
    literal,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from application.ports import BlindIndex, Cipher, Correspondent, InboundEntry
from domain.consent import ConsentState
from domain.contacts import sending_zones
from domain.messages import (
    Charge,
    InboundText,
    Message,
    MessageCategory,
    MessageStatus,
    Outcome,
    StatusChange,
)
from domain.messaging import Encoding
from infrastructure.db.contacts import PHONE
from infrastructure.telemetry.metrics import MESSAGES


class MessageModel(UUIDv7Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("shop_id", "idempotency_key", name="uq_messages_idempotency"),
        Index("ix_messages_shop_created", "shop_id", "created_at", "id"),
        Index("ix_messages_shop_contact_created", "shop_id", "contact_id", "created_at"),
        Index(
            "ix_messages_shop_dedupe",
            "shop_id",
            "dedupe_key",
            "created_at",
            postgresql_where=text("dedupe_key IS NOT NULL"),
        ),
        Index(
            "ix_messages_unfinished",
            "updated_at",
            postgresql_where=text("status IN ('queued', 'sending', 'unknown')"),
        ),
        Index(
            "ix_messages_provider_id",
            "provider_id",
            postgresql_where=text("provider_id IS NOT NULL"),
        ),
        Index(
            "ix_messages_shop_recipient",
            "shop_id",
            "recipient_index",
            postgresql_where=text("recipient_index IS NOT NULL"),
        ),
        # What rows naming a message refer to, so that they can only name their own shop's.
        UniqueConstraint("shop_id", "id", name="uq_messages_shop_id"),
        # With the shop: a key on the id alone is checked past row-level security (0019).
        ForeignKeyConstraint(
            ["shop_id", "contact_id"],
            ["contacts.shop_id", "contacts.id"],
            name="fk_messages_shop_contact",
            ondelete="SET NULL (contact_id)",  # shop_id stays (Postgres 15+)
        ),
    )

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(GUID(length=16))
    recipient: Mapped[str] = mapped_column(Text)  # encrypted E.164
    recipient_index: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(2))
    body: Mapped[str] = mapped_column(Text)  # encrypted
    category: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(32))
    charge: Mapped[str] = mapped_column(String(12))
    encoding: Mapped[str] = mapped_column(String(8))
    segments: Mapped[int] = mapped_column(Integer)
    credits: Mapped[int] = mapped_column(Integer)
    price_version: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    provider_id: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class MessageEventModel(UUIDv7Base):
    __tablename__ = "message_events"
    __table_args__ = (
        Index("ix_message_events_message", "message_id", "at"),
        ForeignKeyConstraint(
            ["shop_id", "message_id"],
            ["messages.shop_id", "messages.id"],
            name="fk_message_events_shop_message",
            ondelete="CASCADE",
        ),
    )

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    message_id: Mapped[uuid.UUID] = mapped_column(GUID(length=16))
    status: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class MessageReportModel(UUIDv7Base):
    """Delivery reports as received (raw payload encrypted), deduplicated per status."""

    __tablename__ = "message_reports"
    __table_args__ = (
        UniqueConstraint("shop_id", "message_id", "status", name="uq_message_reports_status"),
        ForeignKeyConstraint(
            ["shop_id", "message_id"],
            ["messages.shop_id", "messages.id"],
            name="fk_message_reports_shop_message",
            ondelete="CASCADE",
        ),
    )

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    message_id: Mapped[uuid.UUID] = mapped_column(GUID(length=16))
    status: Mapped[str] = mapped_column(String(32))
    provider_status: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # encrypted
    reported_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class InboundMessageModel(UUIDv7Base):
    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index(
            "uq_inbound_messages_provider",
            "shop_id",
            "provider_id",
            unique=True,
            postgresql_where=text("provider_id IS NOT NULL"),
        ),
        Index("ix_inbound_messages_shop_received", "shop_id", "received_at", "id"),
        Index(
            "ix_inbound_messages_shop_review",
            "shop_id",
            "received_at",
            "id",
            postgresql_where=text("needs_review"),
        ),
        Index(
            "ix_inbound_messages_shop_sender",
            "shop_id",
            "sender_index",
            postgresql_where=text("sender_index IS NOT NULL"),
        ),
        ForeignKeyConstraint(
            ["shop_id", "contact_id"],
            ["contacts.shop_id", "contacts.id"],
            name="fk_inbound_messages_shop_contact",
            ondelete="SET NULL (contact_id)",  # shop_id stays (Postgres 15+)
        ),
    )

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID | None] = mapped_column(GUID(length=16))
    provider_id: Mapped[str | None] = mapped_column(String(100))
    sender: Mapped[str] = mapped_column(Text)  # encrypted E.164
    sender_index: Mapped[str | None] = mapped_column(String(64))
    receiver: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)  # encrypted
    keyword: Mapped[str] = mapped_column(String(16))
    needs_review: Mapped[bool] = mapped_column(Boolean, server_default=false())
    received_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


# A transaction-level lock (never session-level on a pooled connection) per shop.
CLOCK_TOLERANCE = timedelta(seconds=5)

_SERIALIZE = text("SELECT pg_advisory_xact_lock(hashtextextended('messages:' || :shop_id, 0))")

# A message's first status is its row (created_at, and the status it was recorded with):
# only later changes are events, which halves the rows a batch writes.
_INSERT = text(
    """
    INSERT INTO messages (id, shop_id, contact_id, recipient, recipient_index, country, body,
        category, source, status, charge, encoding, segments, credits, price_version,
        idempotency_key, dedupe_key, scheduled_at, error, created_at, updated_at)
    SELECT u.id, :shop_id, u.contact_id, u.recipient, u.recipient_index, u.country, u.body,
        u.category, u.source, u.status, u.charge, u.encoding, u.segments, u.credits,
        :price_version, u.idempotency_key, u.dedupe_key, u.scheduled_at, u.error, :now, :now
      FROM unnest(CAST(:ids AS uuid[]), CAST(:contact_ids AS uuid[]),
           CAST(:recipients AS text[]), CAST(:recipient_indexes AS varchar[]),
           CAST(:countries AS varchar[]), CAST(:bodies AS text[]),
           CAST(:categories AS varchar[]), CAST(:sources AS varchar[]),
           CAST(:statuses AS varchar[]), CAST(:charges AS varchar[]),
           CAST(:encodings AS varchar[]), CAST(:segments AS integer[]),
           CAST(:credits AS integer[]), CAST(:idempotency_keys AS varchar[]),
           CAST(:dedupe_keys AS varchar[]), CAST(:scheduled_ats AS timestamptz[]),
           CAST(:errors AS text[]))
        AS u(id, contact_id, recipient, recipient_index, country, body, category, source,
             status, charge, encoding, segments, credits, idempotency_key, dedupe_key,
             scheduled_at, error)
    """
)

# Claim queued messages that are due (and `sending` ones whose claim is older than the
# lease: their worker died mid-send) for this attempt; report what each was before the
# claim and its contact's consent now (a STOP may have come in since it was queued), and
# whether the provider has refused the contact's number since.
# A message requeued for later is not due: a retry of its job must not send it early.
_CLAIM = text(
    """
    WITH old AS (
        SELECT m.id, m.status, c.consent_state, c.timezone, c.address_timezone,
               c.phone_timezones, c.phone_invalid_at IS NOT NULL AS phone_invalid
          FROM messages m
          LEFT JOIN contacts c ON c.id = m.contact_id AND c.shop_id = m.shop_id
         WHERE m.shop_id = :shop_id AND m.id = ANY(CAST(:ids AS uuid[]))
           AND ((m.status = 'queued' AND (m.scheduled_at IS NULL OR m.scheduled_at <= :due_by))
                OR (m.status = 'sending' AND m.claimed_at < :lease_start))
         ORDER BY m.id
           FOR UPDATE OF m
    )
    UPDATE messages m
       SET status = 'sending', claimed_at = :now, attempts = m.attempts + 1, updated_at = :now
      FROM old
     WHERE m.id = old.id
    RETURNING m.id, old.status, m.recipient, m.body, m.encoding, m.credits, m.attempts,
              m.category, m.source, m.contact_id, m.country, m.segments, m.price_version,
              m.idempotency_key, m.dedupe_key, m.scheduled_at, m.created_at,
              old.consent_state, old.timezone, old.address_timezone, old.phone_timezones,
              old.phone_invalid
    """
)
_STILL_CLAIMED = text(
    "SELECT max(claimed_at) FROM messages WHERE shop_id = :shop_id "
    "AND id = ANY(CAST(:ids AS uuid[])) AND status = 'sending'"
)

_SETTLE = text(
    """
    WITH u AS (
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS varchar[]),
            CAST(:provider_ids AS varchar[]), CAST(:errors AS text[]),
            CAST(:charges AS varchar[]), CAST(:scheduled_ats AS timestamptz[]))
            AS u(id, status, provider_id, error, charge, scheduled_at)
    ), m AS (
        UPDATE messages m
           SET status = u.status, provider_id = coalesce(u.provider_id, m.provider_id),
               error = u.error, charge = u.charge, scheduled_at = u.scheduled_at,
               sent_at = CASE WHEN u.status = 'sent' THEN :now ELSE m.sent_at END,
               finished_at = CASE WHEN u.status IN ('failed', 'rejected') THEN :now
                                  ELSE m.finished_at END,
               claimed_at = NULL, updated_at = :now
          FROM u
         WHERE m.id = u.id AND m.shop_id = :shop_id AND m.status = 'sending'
        RETURNING m.id, m.status, m.error
    ), kept AS (
        -- A report settled it first: keep the provider's id all the same, as later reports
        -- may name only that.
        UPDATE messages m SET provider_id = u.provider_id, updated_at = :now
          FROM u
         WHERE m.id = u.id AND m.shop_id = :shop_id AND m.status <> 'sending'
           AND m.provider_id IS NULL AND u.provider_id IS NOT NULL
    )
    INSERT INTO message_events (id, shop_id, message_id, status, detail, at)
    SELECT gen_random_uuid(), :shop_id, m.id, m.status, m.error, :now FROM m
    RETURNING message_id
    """
)


def _of_person(phone_index: str) -> str:
    """A person's rows: linked to one of their contacts, or sent to or from one of their
    numbers (a number can text the shop before it is anyone's contact)."""
    return (
        "shop_id = :shop_id AND (contact_id = ANY(CAST(:contact_ids AS uuid[])) "
        f"OR {phone_index} = ANY(CAST(:phone_indexes AS varchar[])))"
    )


_TO_PERSON = _of_person("recipient_index")
_FROM_PERSON = _of_person("sender_index")

# Redaction keeps each row (the ledger points at messages) but empties what identifies a
# person, the blind index too: a kept digest would still tie the row to the number. An
# empty ciphertext reads back as an empty string.
_REDACT_MESSAGES = text(
    "UPDATE messages SET recipient = '', recipient_index = NULL, body = '', updated_at = now() "
    f"WHERE {_TO_PERSON} AND recipient <> '' RETURNING id"
)
_REDACT_INBOUND = text(
    "UPDATE inbound_messages SET sender = '', sender_index = NULL, body = '' "
    f"WHERE {_FROM_PERSON} AND sender <> ''"
)
_REDACT_REPORTS = text(
    "DELETE FROM message_reports WHERE shop_id = :shop_id AND message_id IN "
    f"(SELECT id FROM messages WHERE {_TO_PERSON})"
)

# Rows stored before their phone had a blind index (migration 0017), in id order; an
# erased row has no number left to index.
_UNINDEXED = {
    False: ("messages", "recipient", "recipient_index", "messages.to"),
    True: ("inbound_messages", "sender", "sender_index", "inbound"),
}

# Cross-shop, for the maintenance sweep: due messages no live delivery job names.
_ORPHANS = text(
    """
    SELECT m.shop_id, m.id FROM messages m
     WHERE ((m.status = 'queued' AND coalesce(m.scheduled_at, m.created_at) < :before)
         OR (m.status = 'sending' AND m.claimed_at < :before))
       AND NOT EXISTS (
           SELECT 1 FROM procrastinate_jobs j
            WHERE j.task_name = 'messages:deliver' AND j.status IN ('todo', 'doing')
              AND j.args->>'shop_id' = m.shop_id::text
              AND j.args->'message_ids' ? m.id::text)
     ORDER BY m.shop_id, m.id
     LIMIT :limit
    """
)
_UNRESOLVED = text(
    "SELECT shop_id, id FROM messages WHERE status = 'unknown' AND updated_at < :before "
    "ORDER BY shop_id, id LIMIT :limit"
)


def _any(keys: Sequence[str]) -> ColumnElement[Any]:
    """`= ANY($1::varchar[])`: one array parameter whatever the batch size. `in_()` sends a
    parameter per key, and a batch's 500 cost Postgres 13 ms instead of 1.4 (bench/dispatch.py)."""
    return any_(literal(list(keys), ARRAY(String)))


@dataclass(frozen=True, slots=True)
class Claimed:
    message: Message
    interrupted: bool  # it was `sending` already: a previous attempt died mid-send
    consent: ConsentState | None  # its contact's, as of the claim; None without a contact
    timezones: tuple[str, ...]  # its contact's, for quiet hours; () without one
    phone_invalid: bool = False  # the provider has since refused its contact's number


def _count_entered(entered: Counter[tuple[str, str]]) -> None:
    for (status, category), count in entered.items():
        MESSAGES.labels(status, category).inc(count)


class SqlMessages:
    def __init__(
        self,
        session: AsyncSession,
        shop_id: uuid.UUID | None,
        cipher: Cipher,
        index: BlindIndex,
        after_commit: Callable[[Callable[[], None]], None],
    ) -> None:
        self._session = session
        self._shop_id = shop_id
        self._cipher = cipher
        self._index = index
        self._after_commit = after_commit

    async def serialize(self) -> None:
        await self._session.execute(_SERIALIZE, {"shop_id": str(self._shop_id)})

    async def existing(
        self, idempotency_keys: Sequence[str]
    ) -> dict[str, tuple[uuid.UUID, MessageStatus]]:
        rows = await self._session.execute(
            select(MessageModel.idempotency_key, MessageModel.id, MessageModel.status).where(
                MessageModel.shop_id == self._shop_id,
                MessageModel.idempotency_key == _any(idempotency_keys),
            )
        )
        return {key: (message_id, MessageStatus(status)) for key, message_id, status in rows}

    async def marketing_counts(
        self, contact_ids: Sequence[uuid.UUID], since: datetime
    ) -> dict[uuid.UUID, int]:
        rows = await self._session.execute(
            text(
                "SELECT contact_id, count(*) FROM messages WHERE shop_id = :shop_id "
                "AND contact_id = ANY(CAST(:ids AS uuid[])) AND category = 'marketing' "
                "AND charge <> 'none' AND coalesce(scheduled_at, created_at) >= :since "
                "GROUP BY contact_id"
            ),
            {"shop_id": self._shop_id, "ids": list(contact_ids), "since": since},
        )
        return {contact_id: count for contact_id, count in rows}

    async def recent_dedupe_keys(self, keys: Sequence[str], since: datetime) -> set[str]:
        rows = await self._session.scalars(
            select(MessageModel.dedupe_key).where(
                MessageModel.shop_id == self._shop_id,
                MessageModel.dedupe_key == _any(keys),
                MessageModel.created_at >= since,
                MessageModel.charge != "none",
            )
        )
        return {key for key in rows if key}

    async def add_many(self, messages: Sequence[Message], now: datetime) -> None:
        if not messages:
            return
        encrypt = self._cipher.encrypt
        await self._session.execute(
            _INSERT,
            {
                "shop_id": self._shop_id,
                "now": now,
                "price_version": messages[0].price_version,
                "ids": [m.id for m in messages],
                "contact_ids": [m.contact_id for m in messages],
                "recipients": [encrypt(m.to, context=f"messages.to:{m.id}") for m in messages],
                "recipient_indexes": [self._phone_index(m.to) for m in messages],
                "countries": [m.country for m in messages],
                "bodies": [encrypt(m.text, context=f"messages.text:{m.id}") for m in messages],
                "categories": [m.category.value for m in messages],
                "sources": [m.source for m in messages],
                "statuses": [m.status.value for m in messages],
                "charges": [
                    (Charge.NONE if m.status.blocked else Charge.RESERVED).value for m in messages
                ],
                "encodings": [m.encoding.value for m in messages],
                "segments": [m.segments for m in messages],
                "credits": [m.credits for m in messages],
                "idempotency_keys": [m.idempotency_key for m in messages],
                "dedupe_keys": [m.dedupe_key for m in messages],
                "scheduled_ats": [m.scheduled_at for m in messages],
                "errors": [m.error for m in messages],
            },
        )
        # Every status a text enters when queued (queued, scheduled, each blocked reason,
        # skipped), whoever queued it.
        entered = Counter((m.status.value, m.category.value) for m in messages)
        self._after_commit(partial(_count_entered, entered))

    async def claim(
        self, ids: Sequence[uuid.UUID], now: datetime, lease_start: datetime
    ) -> list[Claimed]:
        rows = await self._session.execute(
            _CLAIM,
            {
                "shop_id": self._shop_id,
                "ids": list(ids),
                "now": now,
                "lease_start": lease_start,
                # The job queue schedules by the database's clock, we by ours.
                "due_by": now + CLOCK_TOLERANCE,
            },
        )
        return [
            Claimed(
                Message(
                    id=r.id,
                    shop_id=self._shop_id,  # type: ignore[arg-type]  # tenant scope
                    contact_id=r.contact_id,
                    to=self._open(r.recipient, context=f"messages.to:{r.id}"),
                    country=r.country,
                    text=self._open(r.body, context=f"messages.text:{r.id}"),
                    category=MessageCategory(r.category),
                    source=r.source,
                    status=MessageStatus.SENDING,
                    encoding=Encoding(r.encoding),
                    segments=r.segments,
                    credits=r.credits,
                    price_version=r.price_version,
                    idempotency_key=r.idempotency_key,
                    dedupe_key=r.dedupe_key,
                    scheduled_at=r.scheduled_at,
                    created_at=r.created_at,
                    attempts=r.attempts,
                ),
                interrupted=r.status == MessageStatus.SENDING,
                consent=ConsentState(r.consent_state) if r.consent_state else None,
                timezones=sending_zones(r.timezone, r.address_timezone, r.phone_timezones or ()),
                phone_invalid=bool(r.phone_invalid),
            )
            for r in rows
        ]

    async def claimed_until(self, ids: Sequence[uuid.UUID]) -> datetime | None:
        """When the latest live claim among `ids` was taken (None when none is `sending`)."""
        return await self._session.scalar(
            _STILL_CLAIMED, {"shop_id": self._shop_id, "ids": list(ids)}
        )

    async def settle(self, outcomes: Sequence[Outcome], now: datetime) -> set[uuid.UUID]:
        """Record what became of claimed messages; returns those that were still claimed."""
        if not outcomes:
            return set()
        rows = await self._session.execute(
            _SETTLE,
            {
                "shop_id": self._shop_id,
                "now": now,
                "ids": [o.message_id for o in outcomes],
                "statuses": [o.status.value for o in outcomes],
                "provider_ids": [o.provider_id for o in outcomes],
                "errors": [o.error for o in outcomes],
                "charges": [o.charge.value for o in outcomes],
                "scheduled_ats": [o.retry_at for o in outcomes],
            },
        )
        return set(rows.scalars())

    async def get(self, message_id: uuid.UUID) -> Message | None:
        row = await self._session.get(MessageModel, message_id)
        if row is None or row.shop_id != self._shop_id:
            return None
        return self._message(row)

    async def history(self, message_id: uuid.UUID) -> list[StatusChange]:
        message = await self.get(message_id)
        if message is None:
            return []
        rows = await self._session.scalars(
            select(MessageEventModel)
            .where(
                MessageEventModel.shop_id == self._shop_id,
                MessageEventModel.message_id == message_id,
            )
            .order_by(MessageEventModel.at, MessageEventModel.id)
        )
        # Blocked is final, so a blocked message still has the status it was recorded with.
        first = (
            StatusChange(message.status, message.created_at, message.error)
            if message.status.blocked
            else StatusChange(MessageStatus.QUEUED, message.created_at)
        )
        return [first, *(StatusChange(MessageStatus(r.status), r.at, r.detail) for r in rows)]

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
    ) -> list[Message]:
        query = select(MessageModel).where(MessageModel.shop_id == self._shop_id)
        if before is not None:
            at, last = before
            query = query.where(
                (MessageModel.created_at < at)
                | ((MessageModel.created_at == at) & (MessageModel.id < last))
            )
        if status is not None:
            query = query.where(MessageModel.status == status.value)
        if contact_id is not None:
            query = query.where(MessageModel.contact_id == contact_id)
        if source is not None:
            query = query.where(MessageModel.source == source)
        if created_from is not None:
            query = query.where(MessageModel.created_at >= created_from)
        if created_to is not None:
            query = query.where(MessageModel.created_at < created_to)
        query = query.order_by(MessageModel.created_at.desc(), MessageModel.id.desc()).limit(limit)
        return [self._message(r) for r in await self._session.scalars(query)]

    async def for_update(self, message_id: uuid.UUID) -> tuple[Message, Charge] | None:
        """The message and its charge state, locked for a report to move it."""
        row = await self._session.get(MessageModel, message_id, with_for_update=True)
        if row is None or row.shop_id != self._shop_id:
            return None
        return self._message(row), Charge(row.charge)

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
        """Store a report; False when this message already had a report of this status."""
        report_id = uuid7()
        inserted = await self._session.scalar(
            text(
                "INSERT INTO message_reports (id, shop_id, message_id, status, provider_status,"
                " error_code, payload, reported_at, received_at) VALUES (:id, :shop_id,"
                " :message_id, :status, :provider_status, :error_code, :payload, :reported_at,"
                " :now) ON CONFLICT ON CONSTRAINT uq_message_reports_status DO NOTHING"
                " RETURNING id"
            ),
            {
                "id": report_id,
                "shop_id": self._shop_id,
                "message_id": message_id,
                "status": status.value,
                "provider_status": (provider_status or "")[:64] or None,
                "error_code": (error_code or "")[:64] or None,
                "payload": self._cipher.encrypt(payload, context=f"message_reports:{report_id}"),
                "reported_at": reported_at,
                "now": now,
            },
        )
        return inserted is not None

    async def advance(
        self,
        message_id: uuid.UUID,
        status: MessageStatus,
        *,
        charge: Charge,
        detail: str | None,
        at: datetime,
    ) -> None:
        await self._session.execute(
            text(
                "WITH m AS (UPDATE messages SET status = :status, charge = :charge,"
                " error = coalesce(:detail, error), updated_at = :at,"
                " finished_at = CASE WHEN :final THEN :at ELSE finished_at END"
                " WHERE id = :id AND shop_id = :shop_id RETURNING id)"
                " INSERT INTO message_events (id, shop_id, message_id, status, detail, at)"
                " SELECT :event_id, :shop_id, m.id, :status, :detail, :at FROM m"
            ),
            {
                "id": message_id,
                "shop_id": self._shop_id,
                "status": status.value,
                "charge": charge.value,
                "detail": detail,
                "at": at,
                "final": status.final,
                "event_id": uuid7(),
            },
        )

    async def add_inbound(self, inbound: InboundText, *, needs_review: bool = False) -> bool:
        """Store an inbound text; False when the provider already delivered this one."""
        inserted = await self._session.scalar(
            text(
                "INSERT INTO inbound_messages (id, shop_id, contact_id, provider_id, sender,"
                " sender_index, receiver, body, keyword, needs_review, received_at) VALUES"
                " (:id, :shop_id, :contact_id, :provider_id, :sender, :sender_index,"
                " :receiver, :body, :keyword, :needs_review, :received_at)"
                " ON CONFLICT (shop_id, provider_id) WHERE provider_id IS NOT NULL DO NOTHING"
                " RETURNING id"
            ),
            {
                "id": inbound.id,
                "shop_id": self._shop_id,
                "contact_id": inbound.contact_id,
                "provider_id": inbound.provider_id,
                "sender": self._cipher.encrypt(inbound.sender, context=f"inbound:{inbound.id}"),
                "sender_index": self._phone_index(inbound.sender),
                "receiver": inbound.receiver,
                "body": self._cipher.encrypt(inbound.text, context=f"inbound.text:{inbound.id}"),
                "keyword": inbound.keyword,
                "needs_review": needs_review,
                "received_at": inbound.received_at,
            },
        )
        return inserted is not None

    async def inbound_page(
        self,
        *,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None = None,
        needs_review: bool | None = None,
    ) -> list[InboundEntry]:
        model = InboundMessageModel
        query = select(model).where(model.shop_id == self._shop_id)
        if before is not None:
            at, last = before
            query = query.where(
                (model.received_at < at) | ((model.received_at == at) & (model.id < last))
            )
        if needs_review is not None:
            query = query.where(model.needs_review.is_(needs_review))
        query = query.order_by(model.received_at.desc(), model.id.desc()).limit(limit)
        return [self._inbound(r) for r in await self._session.scalars(query)]

    def _inbound(self, row: InboundMessageModel) -> InboundEntry:
        message = InboundText(
            id=row.id,
            shop_id=row.shop_id,
            contact_id=row.contact_id,
            provider_id=row.provider_id,
            sender=self._open(row.sender, context=f"inbound:{row.id}"),
            receiver=row.receiver,
            text=self._open(row.body, context=f"inbound.text:{row.id}"),
            keyword=row.keyword,
            received_at=row.received_at,
        )
        return InboundEntry(message, row.needs_review)

    async def orphans(self, before: datetime, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
        rows = await self._session.execute(_ORPHANS, {"before": before, "limit": limit})
        return [(shop_id, message_id) for shop_id, message_id in rows]

    async def unresolved(self, before: datetime, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
        rows = await self._session.execute(_UNRESOLVED, {"before": before, "limit": limit})
        return [(shop_id, message_id) for shop_id, message_id in rows]

    def _open(self, value: str, *, context: str) -> str:
        return self._cipher.decrypt(value, context=context) if value else ""

    def _phone_index(self, phone: str) -> str | None:
        # Digested as contacts.phone_index is, so a person's number finds both.
        return self._index.digest(phone, purpose=PHONE) if phone else None

    def _correspondent(self, who: Correspondent) -> dict[str, Any]:
        return {
            "shop_id": self._shop_id,
            "contact_ids": list(who.contact_ids),
            "phone_indexes": [self._phone_index(phone) for phone in who.phones],
        }

    async def of_correspondent(self, who: Correspondent) -> list[Message]:
        query = (
            select(MessageModel)
            .where(text(_TO_PERSON))
            .order_by(MessageModel.created_at, MessageModel.id)
        )
        rows = await self._session.scalars(query, self._correspondent(who))
        return [self._message(r) for r in rows]

    async def inbound_of_correspondent(self, who: Correspondent) -> list[InboundText]:
        model = InboundMessageModel
        query = select(model).where(text(_FROM_PERSON)).order_by(model.received_at, model.id)
        rows = await self._session.scalars(query, self._correspondent(who))
        return [self._inbound(r).message for r in rows]

    async def redact_correspondent(self, who: Correspondent) -> int:
        """Erase a person's numbers and texts (GDPR); the rows stay for the ledger's sake."""
        params = self._correspondent(who)
        await self._session.execute(_REDACT_REPORTS, params)
        await self._session.execute(_REDACT_INBOUND, params)
        return len((await self._session.execute(_REDACT_MESSAGES, params)).all())

    async def index_phones(
        self, *, inbound: bool, after: uuid.UUID | None, limit: int
    ) -> tuple[int, uuid.UUID | None]:
        table, column, index, context = _UNINDEXED[inbound]
        rows = (
            await self._session.execute(
                text(
                    f"SELECT id, {column} FROM {table} WHERE {index} IS NULL AND {column} <> ''"
                    " AND id > :after ORDER BY id LIMIT :limit"
                ),
                {"after": after or uuid.UUID(int=0), "limit": limit},
            )
        ).all()
        digests = {
            row_id: self._phone_index(self._open(phone, context=f"{context}:{row_id}"))
            for row_id, phone in rows
        }
        found = {row_id: digest for row_id, digest in digests.items() if digest}
        # Compared again under the row lock: a redaction committed meanwhile stays erased.
        await self._session.execute(
            text(
                f"UPDATE {table} t SET {index} = u.digest FROM unnest(CAST(:ids AS uuid[]),"
                " CAST(:digests AS varchar[])) AS u(id, digest)"
                f" WHERE t.id = u.id AND t.{index} IS NULL AND t.{column} <> ''"
            ),
            {"ids": list(found), "digests": list(found.values())},
        )
        return len(found), rows[-1].id if len(rows) == limit else None

    def _message(self, row: MessageModel) -> Message:
        return Message(
            id=row.id,
            shop_id=row.shop_id,
            contact_id=row.contact_id,
            to=self._open(row.recipient, context=f"messages.to:{row.id}"),
            country=row.country,
            text=self._open(row.body, context=f"messages.text:{row.id}"),
            category=MessageCategory(row.category),
            source=row.source,
            status=MessageStatus(row.status),
            encoding=Encoding(row.encoding),
            segments=row.segments,
            credits=row.credits,
            price_version=row.price_version,
            idempotency_key=row.idempotency_key,
            dedupe_key=row.dedupe_key,
            scheduled_at=row.scheduled_at,
            created_at=row.created_at,
            provider_id=row.provider_id,
            error=row.error,
            attempts=row.attempts,
            sent_at=row.sent_at,
            finished_at=row.finished_at,
        )
