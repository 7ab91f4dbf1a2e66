"""Replay stored webhook events: one by id, or every failed one of a shop (and topic)."""

from __future__ import annotations

import uuid

from application.ports import UnitOfWorkFactory
from application.tasks import PROCESS_WEBHOOK
from domain.events import EventStatus


class ReplayWebhooks:
    def __init__(self, uows: UnitOfWorkFactory) -> None:
        self._uows = uows

    async def one(self, shop_id: uuid.UUID, event_id: uuid.UUID, *, actor: str) -> bool:
        return bool(await self._replay(shop_id, [event_id], only=None, actor=actor))

    async def failed(self, shop_id: uuid.UUID, *, topic: str | None, actor: str) -> int:
        async with self._uows.for_shop(shop_id) as uow:
            events = await uow.webhooks.find(status=EventStatus.FAILED, topic=topic, limit=10_000)
        # A failed event may still have a retry waiting, which can handle it before the
        # reset: only what is still failed then is replayed, so no handler runs twice.
        return await self._replay(
            shop_id, [e.id for e in events], only=EventStatus.FAILED, actor=actor
        )

    async def _replay(
        self,
        shop_id: uuid.UUID,
        event_ids: list[uuid.UUID],
        *,
        only: EventStatus | None,
        actor: str,
    ) -> int:
        async with self._uows.for_shop(shop_id) as uow:
            replayed = await uow.webhooks.reset_many(event_ids, only=only)
            await uow.jobs.defer_many(
                [
                    PROCESS_WEBHOOK.job({"shop_id": str(shop_id), "event_id": str(event_id)})
                    for event_id in replayed
                ]
            )
            if replayed:
                await uow.audit.record(
                    action="webhooks.replayed", actor=actor, details={"count": len(replayed)}
                )
            await uow.commit()
        return len(replayed)
