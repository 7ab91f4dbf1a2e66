"""The merchant's view of their shop's requests, and the download of an export."""

from __future__ import annotations

import uuid

from application.gdpr.requests import MERCHANT_ACTOR
from application.ports import UnitOfWorkFactory
from domain.errors import NotFound
from domain.gdpr import GdprRequest


class ListRequests:
    def __init__(self, uows: UnitOfWorkFactory) -> None:
        self._uows = uows

    async def __call__(
        self, shop_id: uuid.UUID, *, limit: int, before: uuid.UUID | None = None
    ) -> list[GdprRequest]:
        async with self._uows.for_shop(shop_id) as uow:
            return await uow.gdpr.page(limit=limit, before=before)


class DownloadBundle:
    """Each download is audited: the bundle is a person's whole record."""

    def __init__(self, uows: UnitOfWorkFactory) -> None:
        self._uows = uows

    async def __call__(self, shop_id: uuid.UUID, request_id: uuid.UUID) -> str:
        async with self._uows.for_shop(shop_id) as uow:
            bundle = await uow.gdpr.bundle(request_id)
            if bundle is None:
                raise NotFound("no export for this request")
            await uow.audit.record(
                action="gdpr.bundle.downloaded", actor=MERCHANT_ACTOR, subject=str(request_id)
            )
            await uow.commit()
        return bundle
