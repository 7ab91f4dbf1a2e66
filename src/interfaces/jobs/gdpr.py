"""GDPR tasks: a shop's purge after `shop/redact`, and the hourly sweep of requests still
owed (deduplicated across workers by a queueing lock, never a `lock`)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import procrastinate

from application.gdpr.requests import SHOPIFY_ACTOR
from application.tasks import FULFIL_OVERDUE_GDPR, PURGE_SHOP
from infrastructure.queue.periodic import periodic_task
from infrastructure.queue.retry import BackoffRetry
from infrastructure.telemetry.metrics import GDPR_REQUESTS_OVERDUE

if TYPE_CHECKING:
    from interfaces.bootstrap import Container


def gdpr_blueprint(container: Container) -> procrastinate.Blueprint:
    bp = procrastinate.Blueprint()

    @bp.task(
        name=PURGE_SHOP.name,
        queue=PURGE_SHOP.queue,
        retry=BackoffRetry(max_attempts=8, base_seconds=30, cap_seconds=3600),
    )
    async def purge_shop(shop_id: str) -> None:
        await container.purge_shop()(uuid.UUID(shop_id), actor=SHOPIFY_ACTOR)

    @periodic_task(bp, FULFIL_OVERDUE_GDPR, cron="41 * * * *", periodic_id="gdpr-fulfil-overdue")
    async def fulfil_overdue(timestamp: int | None = None) -> None:
        GDPR_REQUESTS_OVERDUE.set(await container.fulfil_overdue_gdpr()())

    return bp
