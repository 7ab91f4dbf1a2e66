"""Run the handler registered for a stored event's topic; record the outcome."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from application.ports import UnitOfWork, UnitOfWorkFactory
from domain.events import COMPLIANCE_TOPICS, EventStatus, WebhookEvent

_PENDING = (EventStatus.RECEIVED, EventStatus.FAILED)
# Where payloads name their shop: the compliance topics, and the Shop resource
# (`app/uninstalled`, `shop/update`), whose `domain` may be a custom one.
_SHOP_KEYS = ("shop_domain", "myshopify_domain")
OTHER_SHOP = "the payload names another shop than the delivery's header"

WebhookHandler = Callable[[UnitOfWork, WebhookEvent, Mapping[str, Any]], Awaitable[None]]


class ProcessWebhook:
    """Handlers run inside the event's own transaction, so an event is marked processed
    exactly when its effects commit. A failure is recorded in a fresh transaction and
    re-raised for the job's retry strategy."""

    def __init__(self, uows: UnitOfWorkFactory, handlers: Mapping[str, WebhookHandler]) -> None:
        self._uows = uows
        self._handlers = handlers

    async def __call__(self, shop_id: uuid.UUID, event_id: uuid.UUID) -> EventStatus | None:
        try:
            return await self._run(shop_id, event_id)
        except Exception as exc:
            async with self._uows.for_shop(shop_id) as uow:
                await uow.webhooks.mark(event_id, EventStatus.FAILED, error=_describe(exc))
                await uow.commit()
            raise

    async def _run(self, shop_id: uuid.UUID, event_id: uuid.UUID) -> EventStatus | None:
        async with self._uows.for_shop(shop_id) as uow:
            # Locked: a replay can queue a second job for an event whose job is still
            # waiting, and the two must not both run its handler.
            found = await uow.webhooks.get(event_id, for_update=True)
            if found is None or found[0].status not in _PENDING:
                return None  # pruned, or already handled by an earlier attempt
            event, payload = found
            data = json.loads(payload)
            handler = self._handlers.get(event.topic)
            if await self._names_another_shop(uow, shop_id, data):
                # Shopify signs the body, not the shop header, with one secret for every
                # shop: a signed body replayed under another shop's header stops here.
                await uow.webhooks.mark(event_id, EventStatus.IGNORED, error=OTHER_SHOP)
                await uow.commit()
                return EventStatus.IGNORED
            if handler is None:
                if event.topic in COMPLIANCE_TOPICS:
                    return None  # kept as received until its fulfilment exists
                status = EventStatus.IGNORED
            else:
                await handler(uow, event, data)
                status = EventStatus.PROCESSED
            await uow.webhooks.mark(event_id, status)
            await uow.commit()
            return status

    @staticmethod
    async def _names_another_shop(uow: UnitOfWork, shop_id: uuid.UUID, data: Any) -> bool:
        if not isinstance(data, dict):
            return False
        named = {str(data[key]).strip().lower() for key in _SHOP_KEYS if data.get(key)}
        if not named:
            return False
        shop = await uow.shops.get(shop_id)
        return shop is not None and named != {shop.domain}


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"
