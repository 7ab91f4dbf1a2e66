"""Store an authenticated Shopify delivery and defer its processing, in one transaction."""

from __future__ import annotations

import enum

from application.ports import UnitOfWorkFactory
from application.tasks import PROCESS_WEBHOOK
from domain.events import WebhookDelivery


class IngestOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    UNKNOWN_SHOP = "unknown_shop"


class IngestWebhook:
    def __init__(self, uows: UnitOfWorkFactory) -> None:
        self._uows = uows

    async def __call__(self, delivery: WebhookDelivery) -> IngestOutcome:
        async with self._uows.for_shop_domain(delivery.shop_domain) as uow:
            if uow.shop_id is None:
                return IngestOutcome.UNKNOWN_SHOP
            event_id = await uow.webhooks.add(delivery)
            if event_id is None:
                return IngestOutcome.DUPLICATE
            await uow.jobs.defer(
                PROCESS_WEBHOOK.job({"shop_id": str(uow.shop_id), "event_id": str(event_id)})
            )
            await uow.commit()
        return IngestOutcome.ACCEPTED
