"""The unit of work: one transaction, scoped to one shop or to maintenance.

Tenant scope sets `app.shop_id` for this transaction only (`set_config(..., true)`),
so a pooled connection never carries one shop's scope into another's work. The
maintenance scope switches to the `blossom_maintenance` role for this transaction:
cross-shop access is always explicit and named.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infrastructure.db.audit import SqlAuditLog
from infrastructure.db.engine import MAINTENANCE_ROLE
from infrastructure.db.shops import SqlShopRepository
from infrastructure.queue.defer import SqlJobQueue


class SqlUnitOfWork:
    shops: SqlShopRepository
    audit: SqlAuditLog
    jobs: SqlJobQueue
    session: AsyncSession

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        shop_id: uuid.UUID | None,
        maintenance: bool = False,
        job_meta: Callable[[], Mapping[str, Any]] = dict,
    ) -> None:
        if (shop_id is None) != maintenance:
            raise ValueError("a unit of work is either scoped to a shop or explicitly maintenance")
        self._sessions = sessions
        self.shop_id = shop_id
        self.maintenance = maintenance
        self._job_meta = job_meta
        self._committed = False

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        if self.maintenance:
            await self.session.execute(text(f"SET LOCAL ROLE {MAINTENANCE_ROLE}"))
        else:
            await self.session.execute(
                text("SELECT set_config('app.shop_id', :shop_id, true)"),
                {"shop_id": str(self.shop_id)},
            )
        self.shops = SqlShopRepository(self.session)
        self.audit = SqlAuditLog(self.session, self.shop_id)
        self.jobs = SqlJobQueue(self.session, self._job_meta)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed:
                await self.session.rollback()
        finally:
            await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()
        self._committed = True


class UnitOfWorkFactory:
    """Hands out units of work; the composition root builds one per process."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        job_meta: Callable[[], Mapping[str, Any]] = dict,
    ) -> None:
        self._sessions = sessions
        self._job_meta = job_meta

    def for_shop(self, shop_id: uuid.UUID) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._sessions, shop_id=shop_id, job_meta=self._job_meta)

    def maintenance(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self._sessions, shop_id=None, maintenance=True, job_meta=self._job_meta
        )
