"""The safety net behind immediate fulfilment: every hour, retry each request still owed
(an attempt that broke, a purge job that was lost or cancelled) and count the late ones."""

from __future__ import annotations

from datetime import timedelta

from application.gdpr.fulfil_request import FulfilRequest
from application.gdpr.purge_shop import PurgeShop
from application.gdpr.requests import OVERDUE_ACTOR
from application.ports import Clock, UnitOfWorkFactory
from domain.gdpr import GdprRequest, RequestKind, RequestStatus

# Younger requests are still in the hands of their own webhook or purge job.
GRACE = timedelta(minutes=15)


class FulfilOverdueRequests:
    def __init__(
        self,
        uows: UnitOfWorkFactory,
        fulfil: FulfilRequest,
        purge: PurgeShop,
        clock: Clock,
        *,
        batch: int = 100,
    ) -> None:
        self._uows = uows
        self._fulfil = fulfil
        self._purge = purge
        self._clock = clock
        self._batch = batch

    async def __call__(self) -> int:
        """Returns how many requests are past their due date and still not fulfilled."""
        async with self._uows.maintenance() as uow:
            owed = await uow.gdpr.pending(
                received_before=self._clock.now() - GRACE, limit=self._batch
            )
        for request in owed:
            if request.kind is RequestKind.SHOP_REDACT:
                await self._purge(request.shop_id, actor=OVERDUE_ACTOR)
            else:
                await self._retry(request)
        async with self._uows.maintenance() as uow:
            return await uow.gdpr.count_overdue(self._clock.now())

    async def _retry(self, request: GdprRequest) -> None:
        async with self._uows.for_shop(request.shop_id) as uow:
            current = await uow.gdpr.get(request.id, for_update=True)
            if current is None or current.status is not RequestStatus.PENDING:
                return  # fulfilled meanwhile, or its shop purged
            await self._fulfil(uow, current, actor=OVERDUE_ACTOR)
            await uow.commit()
