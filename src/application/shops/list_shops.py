"""Every shop on the deployment: a maintenance-path read for operators."""

from __future__ import annotations

from application.ports import UnitOfWork
from domain.shops import Shop


class ListShops:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self) -> list[Shop]:
        async with self._uow as uow:
            return await uow.shops.list()
