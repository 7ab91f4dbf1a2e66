"""Webhook processing tasks: route stored events to their topic's handler."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import procrastinate

from application.events.process_webhook import ProcessWebhook
from application.tasks import PROCESS_WEBHOOK, PRUNE_WEBHOOK_EVENTS
from infrastructure.queue.periodic import periodic_task
from infrastructure.queue.retry import BackoffRetry

if TYPE_CHECKING:
    from interfaces.bootstrap import Container


def events_blueprint(container: Container) -> procrastinate.Blueprint:
    bp = procrastinate.Blueprint()

    @bp.task(
        name=PROCESS_WEBHOOK.name,
        queue=PROCESS_WEBHOOK.queue,
        retry=BackoffRetry(max_attempts=8, base_seconds=5, cap_seconds=1800),
    )
    async def process_webhook(shop_id: str, event_id: str) -> None:
        process = ProcessWebhook(container.uow, container.webhook_handlers())
        await process(uuid.UUID(shop_id), uuid.UUID(event_id))

    @periodic_task(bp, PRUNE_WEBHOOK_EVENTS, cron="23 * * * *", periodic_id="prune-webhook-events")
    async def prune_webhook_events(timestamp: int | None = None) -> None:
        await container.prune_webhook_events()

    return bp
