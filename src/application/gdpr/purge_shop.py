"""`shop/redact`: erase everything the shop has here, 48 hours after its uninstall.

It runs as a job on the maintenance path, not in the webhook's handler: deleting the shop
deletes its inbox too, the delivery being handled included, so that transaction could
never mark its own event processed. One transaction deletes the shop row, and with it (by
cascade) every row of every tenant table; the shop's waiting jobs are cancelled. What
survives is a platform audit row (no shop) saying which shop was purged, and when.
"""

from __future__ import annotations

import logging
import uuid

from application.ports import Clock, UnitOfWork, UnitOfWorkFactory
from domain.gdpr import RequestKind
from domain.shops import Shop

log = logging.getLogger("blossom.gdpr")

_HELD_REASON = "held: the shop was installed again before its shop/redact was fulfilled"


class PurgeShop:
    def __init__(self, uows: UnitOfWorkFactory, clock: Clock) -> None:
        self._uows = uows
        self._clock = clock

    async def __call__(self, shop_id: uuid.UUID, *, actor: str) -> None:
        async with self._uows.maintenance() as uow:
            shop = await _read_holding_its_domain(uow, shop_id)
            if shop is None:
                return  # an earlier attempt purged it
            # Shopify does not say what a reinstall before shop/redact means; erasing a
            # store that uses the app again would destroy its live data, so the request
            # waits for a person's decision and counts as late until then.
            if not shop.installed:
                cancelled = await uow.jobs.cancel_for_shop(shop_id)
                await uow.shops.delete(shop_id)
                await uow.audit.record(
                    action="gdpr.shop.purged",
                    actor=actor,
                    subject=str(shop_id),
                    details={
                        "shop_id": str(shop_id),
                        "shop_domain": shop.domain,
                        "jobs_cancelled": cancelled,
                    },
                )
                await uow.commit()
                log.info("shop purged", extra={"shop_id": str(shop_id)})
                return
        await self._hold(shop_id, actor)

    async def _hold(self, shop_id: uuid.UUID, actor: str) -> None:
        log.warning("shop/redact held: shop reinstalled", extra={"shop_id": str(shop_id)})
        async with self._uows.for_shop(shop_id) as uow:
            owed = await uow.gdpr.pending(received_before=self._clock.now(), limit=100)
            for request in owed:
                if request.kind is not RequestKind.SHOP_REDACT:
                    continue
                request.hold(_HELD_REASON)
                await uow.gdpr.save(request)
                await uow.audit.record(
                    action="gdpr.request.failed",
                    actor=actor,
                    subject=str(request.id),
                    details={"kind": request.kind.value, "reason": "reinstalled"},
                )
            await uow.commit()


async def _read_holding_its_domain(uow: UnitOfWork, shop_id: uuid.UUID) -> Shop | None:
    """The shop as no install can change it before this transaction ends: a reinstall
    committing between the check and the delete would be erased with the rest."""
    shop = await uow.shops.get(shop_id)
    if shop is None:
        return None
    await uow.hold_shop_domain(shop.domain)
    return await uow.shops.get(shop_id)
