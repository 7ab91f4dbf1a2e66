"""Handled webhook events leave the inbox after the retention period (payloads carry PII).

Events still waiting (received, or failed for replay) are kept: dropping them would lose
work, such as a compliance request not yet fulfilled.
"""

from __future__ import annotations

from datetime import timedelta

from application.ports import Clock, UnitOfWorkFactory


class PruneWebhookEvents:
    def __init__(self, uows: UnitOfWorkFactory, clock: Clock, *, retention_days: int) -> None:
        self._uows = uows
        self._clock = clock
        self._retention = timedelta(days=retention_days)

    async def __call__(self) -> int:
        async with self._uows.maintenance() as uow:
            pruned = await uow.webhooks.prune(handled_before=self._clock.now() - self._retention)
            await uow.commit()
        return pruned
