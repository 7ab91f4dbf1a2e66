"""`/api/v1/messages` (list, read with history, test send, inbound texts) and Mitto's
callbacks."""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Request, get, post, route
from litestar.di import NamedDependency
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    NotFoundException,
    ValidationException,
)
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from opentelemetry import trace

from application.messaging.queue_messages import OutgoingMessage
from application.messaging.receive_inbound_text import InboundTextIn
from application.ports import DeliveryReportIn, InboundEntry, RateLimit
from domain.consent import ConsentState, stopped
from domain.messages import Message, MessageCategory, MessageStatus, Recipient
from infrastructure.mitto.reports import parse_delivery_report, parse_inbound
from infrastructure.telemetry.metrics import SMS_REPORTS
from infrastructure.telemetry.tracing import open_span
from interfaces.bootstrap import Container
from interfaces.http.cursors import decode_cursor, keyset_page, page_of, time_filter
from interfaces.http.problems import within_limit
from interfaces.http.session import CurrentShop

log = logging.getLogger("blossom.messages")
tracer = trace.get_tracer("blossom.messages")

# Test sends cost the merchant real credits and reach real phones: a handful an hour.
TEST_SEND_LIMIT = RateLimit(rate=20, period_seconds=3600, burst=5)


class StatusChangeView(msgspec.Struct, frozen=True):
    status: str
    at: datetime
    detail: str | None


class MessageView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    contact_id: uuid.UUID | None
    to: str
    country: str | None
    text: str
    category: str
    source: str
    status: str
    encoding: str
    segments: int
    credits: int
    price_version: str
    scheduled_at: datetime | None
    created_at: datetime
    provider_id: str | None
    error: str | None
    attempts: int
    history: list[StatusChangeView] | None = None

    @classmethod
    def of(cls, m: Message, history: list[StatusChangeView] | None = None) -> MessageView:
        return cls(
            id=m.id,
            contact_id=m.contact_id,
            to=m.to,
            country=m.country,
            text=m.text,
            category=m.category.value,
            source=m.source,
            status=m.status.value,
            encoding=m.encoding.value,
            segments=m.segments,
            credits=m.credits,
            price_version=m.price_version,
            scheduled_at=m.scheduled_at,
            created_at=m.created_at,
            provider_id=m.provider_id,
            error=m.error,
            attempts=m.attempts,
            history=history,
        )


class MessagePage(msgspec.Struct, frozen=True):
    items: list[MessageView]
    next_cursor: str | None


class InboundView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    contact_id: uuid.UUID | None
    sender: str
    receiver: str
    text: str
    keyword: str
    needs_review: bool
    received_at: datetime

    @classmethod
    def of(cls, entry: InboundEntry) -> InboundView:
        m = entry.message
        return cls(
            id=m.id,
            contact_id=m.contact_id,
            sender=m.sender,
            receiver=m.receiver,
            text=m.text,
            keyword=m.keyword,
            needs_review=entry.needs_review,
            received_at=m.received_at,
        )


class InboundPage(msgspec.Struct, frozen=True):
    items: list[InboundView]
    next_cursor: str | None


class TestSendIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    phone: Annotated[str, msgspec.Meta(min_length=3, max_length=32)]
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=1600)]


class QueuedView(msgspec.Struct, frozen=True):
    id: uuid.UUID
    status: str
    scheduled_at: datetime | None


class MessageController(Controller):
    path = "/messages"
    tags = ["messages"]

    @get("/", summary="Messages, newest first, with cursor pagination and filters")
    async def list_messages(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
        status: FromQuery[MessageStatus | None] = None,
        contact_id: FromQuery[uuid.UUID | None] = None,
        source: Annotated[str | None, QueryParameter(max_length=100, pattern=r"^[^\x00]*$")] = None,
        created_from: FromQuery[datetime | None] = None,
        created_to: FromQuery[datetime | None] = None,
    ) -> MessagePage:
        async with container.uow.for_shop(shop.id) as uow:
            found = await uow.messages.page(
                limit=limit + 1,
                before=decode_cursor(cursor) if cursor else None,
                status=status,
                contact_id=contact_id,
                source=source,
                created_from=time_filter("created_from", created_from),
                created_to=time_filter("created_to", created_to),
            )
        items, cursor_after = page_of(found, limit)
        return MessagePage(items=[MessageView.of(m) for m in items], next_cursor=cursor_after)

    @get(
        "/inbound",
        summary="Texts shoppers sent, newest first; `needs_review` finds those that talk of "
        "opting out without being a bare keyword",
    )
    async def list_inbound(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: FromQuery[str | None] = None,
        needs_review: FromQuery[bool | None] = None,
    ) -> InboundPage:
        async with container.uow.for_shop(shop.id) as uow:
            found = await uow.messages.inbound_page(
                limit=limit + 1,
                before=decode_cursor(cursor) if cursor else None,
                needs_review=needs_review,
            )
        items, cursor_after = keyset_page(
            found, limit, lambda e: (e.message.received_at, e.message.id)
        )
        return InboundPage(items=[InboundView.of(e) for e in items], next_cursor=cursor_after)

    @get("/{message_id:uuid}", summary="One message with its status history")
    async def get_message(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        message_id: FromPath[uuid.UUID],
    ) -> MessageView:
        async with container.uow.for_shop(shop.id) as uow:
            message = await uow.messages.get(message_id)
            if message is None:
                raise NotFoundException(detail="no such message")
            history = await uow.messages.history(message_id)
        return MessageView.of(
            message, [StatusChangeView(h.status.value, h.at, h.detail) for h in history]
        )

    @post("/test", status_code=202, summary="Send a test text to a phone (rate limited)")
    async def test_send(
        self,
        shop: CurrentShop,
        container: NamedDependency[Container],
        data: JSONBody[TestSendIn],
    ) -> QueuedView:
        await within_limit(
            container.rate_limiter,
            f"test-send:{shop.id}",
            TEST_SEND_LIMIT,
            "too many test sends; try again later",
        )
        phone = container.phones.parse(data.phone, shop.country)
        request = OutgoingMessage(
            text=data.text,
            category=MessageCategory.SYSTEM,
            source="test",
            idempotency_key=f"test:{container.ids.new_id()}",
            direct=Recipient.number(phone),
        )
        async with container.uow.for_shop(shop.id) as uow:
            # A test text goes straight to a number, past the consent gate, with whatever the
            # merchant typed; after a STOP the one confirmation was the last (sms.md §3).
            known = await uow.contacts.find(phone=phone.e164)
            if known is not None and stopped(
                known.consent_state,
                await uow.consent.history(known.id)
                if known.consent_state is ConsentState.PENDING
                else (),
            ):
                raise ClientException(
                    status_code=409, detail="this number has opted out of the shop's texts"
                )
            [queued] = await container.queue_messages()(uow, shop, [request])
            await uow.commit()
        return QueuedView(queued.message_id, queued.status.value, queued.scheduled_at)


class MittoCallbackController(Controller):
    """Mitto signs nothing: the callback URLs carry a per-deployment secret (sms.md §1)."""

    path = "/webhooks/mitto"
    tags = ["webhooks"]
    include_in_schema = False

    @route("/dlr", http_method=["GET", "POST"], status_code=200, summary="Delivery reports")
    async def delivery_report(
        self, request: Request, container: NamedDependency[Container]
    ) -> dict[str, str]:
        fields = await _callback_fields(request, container)
        try:
            report = parse_delivery_report(fields)
        except ValueError as exc:
            SMS_REPORTS.labels("dlr", "malformed").inc()
            raise ValidationException(detail=str(exc)) from None
        with open_span("mitto.delivery_report", tracer=tracer):
            outcome, status = await container.record_delivery_report()(
                DeliveryReportIn(
                    provider_id=report.provider_id,
                    reference=report.reference,
                    status_word=report.status_word,
                    error_code=report.error_code,
                    reported_at=report.reported_at,
                    raw=json.dumps(fields, default=str),
                )
            )
        SMS_REPORTS.labels("dlr", outcome.value).inc()
        if status is MessageStatus.UNKNOWN:
            log.warning("unreadable delivery status", extra={"status_word": report.status_word})
        return {"status": outcome.value}

    @route(
        "/inbound",
        http_method=["GET", "POST"],
        status_code=200,
        summary="Inbound texts (replies, STOP, HELP …)",
    )
    async def inbound(
        self, request: Request, container: NamedDependency[Container]
    ) -> dict[str, str]:
        fields = await _callback_fields(request, container)
        try:
            sms = parse_inbound(fields)
        except ValueError as exc:
            SMS_REPORTS.labels("inbound", "malformed").inc()
            raise ValidationException(detail=str(exc)) from None
        with open_span("mitto.inbound", tracer=tracer):
            result = await container.receive_inbound_text()(
                InboundTextIn(
                    provider_id=sms.provider_id,
                    sender=sms.sender,
                    receiver=sms.receiver,
                    text=sms.text,
                    received_at=sms.received_at,
                )
            )
        SMS_REPORTS.labels("inbound", result.outcome).inc()
        if result.needs_review:
            SMS_REPORTS.labels("inbound", "needs_review").inc()
        return {"status": result.outcome, "keyword": result.keyword.value}


async def _callback_fields(request: Request, container: Container) -> dict[str, object]:
    """Query string, form or JSON body, merged (Mitto's shapes are not fixed), once the
    secret in the URL is checked in constant time."""
    token = request.query_params.get("token", "")
    expected = container.settings.mitto_webhook_secret
    if not hmac.compare_digest(token.encode(), expected.encode()):
        SMS_REPORTS.labels("callback", "rejected").inc()
        raise NotAuthorizedException(detail="callback token missing or wrong")
    fields: dict[str, object] = {k: v for k, v in request.query_params.items() if k != "token"}
    body = await request.body()
    if not body:
        return fields
    content_type = request.headers.get("content-type", "")
    if "json" in content_type or body.lstrip()[:1] in (b"{", b"["):
        fields.update(_json_object(body))
    else:
        form = await request.form()
        fields.update({k: v for k, v in form.items() if isinstance(v, str)})
    return fields


def _json_object(body: bytes) -> Mapping[str, object]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested past the decoder's depth
        raise ValidationException(detail="body is not valid JSON") from None
    if not isinstance(value, dict):
        raise ValidationException(detail="body must be a JSON object")
    return value
