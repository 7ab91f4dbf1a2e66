"""The unit of work: one transaction, scoped to one shop or to maintenance.

Tenant scope sets `app.shop_id` for this transaction only (`set_config(..., true)`),
so a pooled connection never carries one shop's scope into another's work. The
maintenance scope switches to the `blossom_maintenance` role for this transaction:
cross-shop access is always explicit and named.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial
from types import TracebackType
from typing import Any, Self

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from application.ports import BlindIndex, Cipher, DeliveryReportIn
from domain.messages import MessageStatus
from infrastructure.db.audit import SqlAuditLog
from infrastructure.db.automations import SqlBackInStock
from infrastructure.db.billing import SqlWallet
from infrastructure.db.contacts import SqlConsentLedger, SqlContactImports, SqlContacts
from infrastructure.db.engine import MAINTENANCE_ROLE
from infrastructure.db.events import SqlWebhookInbox
from infrastructure.db.gdpr import SqlGdprRequests
from infrastructure.db.messages import SqlMessages
from infrastructure.db.shops import SqlCredentialStore, SqlOAuthStates, SqlShopRepository
from infrastructure.db.unmatched_reports import SqlUnmatchedReports
from infrastructure.queue.defer import SqlJobQueue

# One round trip: find the shop by domain (a security-definer function, since no scope
# exists yet) and scope the transaction to it.
_ENTER_BY_DOMAIN = text(
    "SELECT s.id, set_config('app.shop_id', s.id::text, true) "
    "FROM blossom_shop_lookup(:domain) AS s"
)

# A transaction-level lock (never session-level on a pooled connection) per shop domain.
_HOLD_DOMAIN = text("SELECT pg_advisory_xact_lock(hashtextextended('shop:' || :domain, 0))")
_LOCATE_MESSAGE = text("SELECT shop_id, id FROM blossom_message_lookup(:message, :provider)")
_SENDER_SHOP = text("SELECT blossom_sender_lookup(:number)")


class SqlUnitOfWork:
    shops: SqlShopRepository
    audit: SqlAuditLog
    jobs: SqlJobQueue
    credentials: SqlCredentialStore
    webhooks: SqlWebhookInbox
    oauth_states: SqlOAuthStates
    contacts: SqlContacts
    consent: SqlConsentLedger
    gdpr: SqlGdprRequests
    imports: SqlContactImports
    back_in_stock: SqlBackInStock
    wallet: SqlWallet
    messages: SqlMessages
    unmatched_reports: SqlUnmatchedReports
    session: AsyncSession

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: Cipher,
        index: BlindIndex,
        *,
        shop_id: uuid.UUID | None = None,
        shop_domain: str | None = None,
        exclusive: bool = False,
        maintenance: bool = False,
        job_meta: Callable[[], Mapping[str, Any]] = dict,
    ) -> None:
        if sum((shop_id is not None, shop_domain is not None, maintenance)) != 1:
            raise ValueError("a unit of work is scoped to one shop or explicitly maintenance")
        self._sessions = sessions
        self._cipher = cipher
        self._index = index
        self.shop_id = shop_id
        self._shop_domain = shop_domain
        self._exclusive = exclusive
        self.maintenance = maintenance
        self._job_meta = job_meta
        self._committed = False
        # Counts that may only be told once what they count is committed.
        self._after_commit: list[Callable[[], None]] = []

    async def __aenter__(self) -> Self:
        self.session = self._sessions()
        if self.maintenance:
            await self.session.execute(text(f"SET LOCAL ROLE {MAINTENANCE_ROLE}"))
        elif self._shop_domain is not None:
            if self._exclusive:
                await self.hold_shop_domain(self._shop_domain)
            row = (
                await self.session.execute(_ENTER_BY_DOMAIN, {"domain": self._shop_domain})
            ).first()
            self.shop_id = row[0] if row else None
        else:
            await self.session.execute(
                text("SELECT set_config('app.shop_id', :shop_id, true)"),
                {"shop_id": str(self.shop_id)},
            )
        self._bind()
        return self

    def _bind(self) -> None:
        self.shops = SqlShopRepository(self.session)
        self.audit = SqlAuditLog(self.session, self.shop_id)
        self.jobs = SqlJobQueue(self.session, self._job_meta)
        self.credentials = SqlCredentialStore(self.session, self.shop_id, self._cipher)
        self.webhooks = SqlWebhookInbox(self.session, self.shop_id, self._cipher)
        self.oauth_states = SqlOAuthStates(self.session)
        self.contacts = SqlContacts(self.session, self.shop_id, self._cipher, self._index)
        self.consent = SqlConsentLedger(self.session, self.shop_id)
        self.gdpr = SqlGdprRequests(self.session, self.shop_id, self._cipher)
        self.imports = SqlContactImports(self.session, self.shop_id, self._cipher)
        self.back_in_stock = SqlBackInStock(self.session, self.shop_id)
        self.wallet = SqlWallet(self.session, self.shop_id, self._after_commit.append)
        self.messages = SqlMessages(
            self.session, self.shop_id, self._cipher, self._index, self._after_commit.append
        )
        self.unmatched_reports = SqlUnmatchedReports(self.session, self._cipher)

    async def scope_to(self, shop_id: uuid.UUID) -> None:
        if self.maintenance or (self.shop_id is not None and self.shop_id != shop_id):
            raise ValueError("only an unscoped shop-domain unit of work can adopt a shop")
        await self.session.execute(
            text("SELECT set_config('app.shop_id', :shop_id, true)"), {"shop_id": str(shop_id)}
        )
        self.shop_id = shop_id
        self._bind()

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
        for told in self._after_commit:
            told()
        self._after_commit.clear()

    async def hold_shop_domain(self, domain: str) -> None:
        await self.session.execute(_HOLD_DOMAIN, {"domain": domain})

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with self.session.begin_nested():
            yield


class UnitOfWorkFactory:
    """Hands out units of work; the composition root builds one per process."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: Cipher,
        index: BlindIndex,
        job_meta: Callable[[], Mapping[str, Any]] = dict,
    ) -> None:
        self._open = partial(SqlUnitOfWork, sessions, cipher, index, job_meta=job_meta)
        self._sessions = sessions
        self._cipher = cipher

    def for_shop(self, shop_id: uuid.UUID) -> SqlUnitOfWork:
        return self._open(shop_id=shop_id)

    def for_shop_domain(self, domain: str, *, exclusive: bool = False) -> SqlUnitOfWork:
        return self._open(shop_domain=domain, exclusive=exclusive)

    def maintenance(self) -> SqlUnitOfWork:
        return self._open(maintenance=True)

    async def locate_message(
        self, message_id: uuid.UUID | None, provider_id: str | None
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        """(shop, message) for a provider callback, which names no shop."""
        return await self._directory(_LOCATE_MESSAGE, message=message_id, provider=provider_id)

    async def shop_for_number(self, number: str) -> uuid.UUID | None:
        """The shop that claimed this sending number (its replies are that shop's)."""
        row = await self._directory(_SENDER_SHOP, number=number)
        return row[0] if row else None

    async def hold_report(
        self, report: DeliveryReportIn, status: MessageStatus, now: datetime
    ) -> bool:
        """Keep a report no message matches yet; False when already held. It names no shop,
        so it is written unscoped, as `blossom_app`, which may add such rows but not read
        them."""
        async with self._sessions() as session:
            held = await SqlUnmatchedReports(session, self._cipher).hold(report, status, now)
            await session.commit()
        return held

    async def _directory(self, query: Any, **params: Any) -> Any:
        async with self._sessions() as session:
            return (await session.execute(query, params)).first()
