"""Message tasks: deliver a batch of queued messages through the SMS gateway."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

import procrastinate

from application.tasks import DELIVER_MESSAGES, SWEEP_MESSAGES
from domain.messages import MessageStatus
from infrastructure.queue.periodic import periodic_task
from infrastructure.queue.retry import BackoffRetry
from infrastructure.telemetry.metrics import MESSAGES, SMS_REPORTS

if TYPE_CHECKING:
    from interfaces.bootstrap import Container

log = logging.getLogger("blossom.messages")


class ProviderRefusedCredentials(Exception):
    """Mitto refused the API key: the batch waits (requeued) and the job fails loudly."""


def messages_blueprint(container: Container) -> procrastinate.Blueprint:
    bp = procrastinate.Blueprint()

    # Per-message retries live in the messages themselves (each requeued with its own
    # backoff); a job retry only covers a crash of the job itself or a refused key.
    @bp.task(
        name=DELIVER_MESSAGES.name,
        queue=DELIVER_MESSAGES.queue,
        retry=BackoffRetry(max_attempts=5, base_seconds=10, cap_seconds=600),
    )
    async def deliver(shop_id: str, message_ids: list[str]) -> None:
        result = await container.deliver_messages()(
            uuid.UUID(shop_id), [uuid.UUID(m) for m in message_ids]
        )
        for (status, category), count in result.statuses.items():
            MESSAGES.labels(status.value, category.value).inc(count)
        log.info(
            "delivery batch done",
            extra={"messages": len(message_ids), "outcomes": len(result.statuses)},
        )
        if result.unauthorized:
            raise ProviderRefusedCredentials("the SMS provider refused the API key")

    @periodic_task(bp, SWEEP_MESSAGES, cron="*/10 * * * *", periodic_id="messages-sweep")
    async def sweep(timestamp: int | None = None) -> None:
        result = await container.sweep_messages()()
        if result.expired:
            MESSAGES.labels(MessageStatus.EXPIRED.value, "any").inc(result.expired)
        SMS_REPORTS.labels("dlr", "held_matched").inc(result.reports_matched)
        SMS_REPORTS.labels("dlr", "held_dropped").inc(result.reports_dropped)

    return bp
