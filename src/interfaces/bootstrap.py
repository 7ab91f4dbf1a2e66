"""The composition root: settings, database, queue and adapters, built once per process.

The API, the worker and the CLI all start here; nothing is created at import time.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any

import httpx
import procrastinate
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from application.billing.debit_wallet import DebitWallet
from application.billing.shopify_topups import HandlePurchaseUpdate, StartTopUp
from application.contacts.create_contact import ContactForPhone, CreateContact
from application.contacts.import_contacts import ImportContacts, RunContactImport
from application.contacts.record_consent import RecordConsent
from application.contacts.shopify_sync import (
    ContactSync,
    HandleCheckoutOrOrder,
    HandleCustomerUpsert,
    HandleMarketingConsent,
)
from application.contacts.storefront_signup import StorefrontSignUp
from application.events.ingest_webhook import IngestOutcome, IngestWebhook
from application.events.process_webhook import WebhookHandler
from application.events.prune_webhook_events import PruneWebhookEvents
from application.gdpr.export_customer_data import ExportCustomerData
from application.gdpr.fulfil_overdue import FulfilOverdueRequests
from application.gdpr.fulfil_request import FulfilRequest
from application.gdpr.purge_shop import PurgeShop
from application.gdpr.redact_customer import RedactCustomer
from application.gdpr.requests import ReceiveRequest
from application.gdpr.start_data_request import StartDataRequest
from application.gdpr.webhooks import (
    HandleCustomerDataRequest,
    HandleCustomerRedact,
    HandleShopRedact,
)
from application.messaging.deliver_messages import DeliverMessages, DeliveryLimits
from application.messaging.index_message_phones import IndexMessagePhones
from application.messaging.queue_messages import QueueMessages
from application.messaging.receive_inbound_text import ReceiveInboundText
from application.messaging.record_delivery_report import RecordDeliveryReport
from application.messaging.sweep_messages import SweepMessages
from application.operations.prune_finished_jobs import PruneFinishedJobs
from application.operations.recover_stalled_jobs import RecoverStalledJobs
from application.ports import InboxEntry, RateLimit
from application.shops.access_token import GetAccessToken
from application.shops.after_install import AfterInstall
from application.shops.install_shop import InstallShop
from application.shops.lifecycle_webhooks import HandleAppUninstalled, HandleShopUpdate
from domain.billing import DEFAULT_PRICE_LIST, PriceList
from domain.shops import Shop
from infrastructure.clock import SystemClock
from infrastructure.crypto.blind_index import HmacBlindIndex
from infrastructure.crypto.cipher import AesGcmCipher
from infrastructure.crypto.signed_tokens import HmacTokens
from infrastructure.db.embedded import EmbeddedPostgres
from infrastructure.db.engine import create_app_engine, session_factory
from infrastructure.db.events import SqlWebhookIntake
from infrastructure.db.uow import UnitOfWorkFactory
from infrastructure.group_commit import GroupCommit
from infrastructure.ids import Uuid7Ids
from infrastructure.mitto.gateway import MittoSmsGateway
from infrastructure.mitto.simulator import SimulatorSmsGateway
from infrastructure.phones import LibPhoneNumbers
from infrastructure.queue.admin import ProcrastinateJobAdmin
from infrastructure.queue.app import create_queue_app, delete_jobs_policy
from infrastructure.queue.middleware import JobObserver
from infrastructure.ratelimit import PostgresRateLimiter
from infrastructure.settings import Settings
from infrastructure.shopify.admin import HttpShopifyAdmin
from infrastructure.shopify.oauth import HttpShopifyAuth
from infrastructure.telemetry.logging import configure_logging
from infrastructure.telemetry.tracing import configure_tracing, job_meta
from infrastructure.timezones import ZoneTab

log = logging.getLogger("blossom")

# Where the storefront pages live for shoppers: the app proxy (shopify.app.toml).
STOREFRONT_PATH = "/apps/sms"
CONFIRM_LINK_TTL = 7 * 24 * 3600
# Deliveries per ingress transaction at most: ~10 KB each, so a statement stays under 1 MB.
WEBHOOK_BATCH = 64
# Batches in flight at once: while one commits, the next is already being written.
WEBHOOK_WRITERS = 2

BlueprintFactory = Callable[["Container"], Mapping[str, procrastinate.Blueprint]]


def resolve_database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """`DATABASE_URL`, or an embedded Postgres in the data folder when it is unset."""
    if settings.database_url:
        return settings.database_url, None
    embedded = EmbeddedPostgres(settings.data_dir)
    return embedded.url, embedded


@dataclass
class Container:
    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    uow: UnitOfWorkFactory
    cipher: AesGcmCipher
    blind_index: HmacBlindIndex
    http: httpx.AsyncClient
    embedded: EmbeddedPostgres | None = None
    clock: SystemClock = field(default_factory=SystemClock)
    ids: Uuid7Ids = field(default_factory=Uuid7Ids)
    phones: LibPhoneNumbers = field(default_factory=LibPhoneNumbers)
    country_zones: ZoneTab = field(default_factory=ZoneTab)
    # Set right after construction: the tasks it registers close over the container.
    queue: procrastinate.App = field(init=False)

    @property
    def job_admin(self) -> ProcrastinateJobAdmin:
        return ProcrastinateJobAdmin(self.queue, self.sessions)

    def recover_stalled_jobs(self) -> RecoverStalledJobs:
        return RecoverStalledJobs(
            self.job_admin, seconds_since_heartbeat=self.settings.stalled_worker_seconds
        )

    def prune_finished_jobs(self) -> PruneFinishedJobs:
        return PruneFinishedJobs(self.job_admin)

    @cached_property
    def shopify_auth(self) -> HttpShopifyAuth:
        return HttpShopifyAuth(
            self.http,
            api_key=self.settings.shopify_api_key,
            api_secret=self.settings.shopify_api_secret,
            scopes=self.settings.shopify_scopes,
            origin=self.settings.shopify_origin,
            now=self.clock.now,
        )

    @cached_property
    def shopify_tokens(self) -> GetAccessToken:
        return GetAccessToken(self.uow, self.shopify_auth, self.clock)

    @cached_property
    def shopify_admin(self) -> HttpShopifyAdmin:
        tokens = self.shopify_tokens
        return HttpShopifyAdmin(
            self.http,
            api_version=self.settings.shopify_api_version,
            origin=self.settings.shopify_origin,
            access_token=lambda shop: tokens(shop.id, shop.domain),
            token_refused=lambda shop, token: tokens.forget(shop.id, token),
        )

    @cached_property
    def webhook_ingress(self) -> GroupCommit[InboxEntry, IngestOutcome]:
        ingest = IngestWebhook(SqlWebhookIntake(self.engine, self.cipher))
        return GroupCommit("webhooks", ingest, max_batch=WEBHOOK_BATCH, writers=WEBHOOK_WRITERS)

    @cached_property
    def tokens(self) -> HmacTokens:
        # Link and form tokens hang off the blind-index key (a long-lived random secret),
        # under their own derivation label, so a Shopify secret rotation keeps links alive.
        return HmacTokens(self.settings.blind_index_key)

    @cached_property
    def price_list(self) -> PriceList:
        overrides = self.settings.price_overrides
        if not overrides:
            return DEFAULT_PRICE_LIST
        # The version must name the prices, not only that there were overrides: a message
        # charged before a PRICE_OVERRIDES change and one charged after it must not carry
        # the same version. Equal overrides give equal versions on every process.
        pairs = ",".join(f"{country}:{credits}" for country, credits in sorted(overrides.items()))
        digest = hashlib.sha256(pairs.encode()).hexdigest()[:12]
        return DEFAULT_PRICE_LIST.with_overrides(overrides, f"local.{digest}")

    @cached_property
    def rate_limiter(self) -> PostgresRateLimiter:
        return PostgresRateLimiter(self.sessions)

    def contact_for_phone(self) -> ContactForPhone:
        return ContactForPhone(self.phones, self.clock, self.ids)

    def import_contacts(self) -> ImportContacts:
        create = CreateContact(self.phones, self.clock, self.ids)
        return ImportContacts(create, RecordConsent(self.clock))

    def run_contact_import(self) -> RunContactImport:
        return RunContactImport(self.uow, self.import_contacts(), self.clock)

    def start_topup(self) -> StartTopUp:
        return StartTopUp(
            self.uow,
            self.shopify_admin,
            self.ids,
            return_url=f"{self.settings.app_url}/billing/return",
            test_mode=not self.settings.production,
        )

    def install_shop(self) -> InstallShop:
        return InstallShop(
            self.uow, self.clock, self.ids, trial_credits=self.settings.trial_credits
        )

    def after_install(self) -> AfterInstall:
        return AfterInstall(
            self.uow,
            self.shopify_admin,
            webhook_uri=f"{self.settings.app_url}/webhooks/shopify",
            declared_in_app_config=self.settings.shopify_webhooks_via == "toml",
        )

    def receive_gdpr_request(self) -> ReceiveRequest:
        return ReceiveRequest(self.clock, self.ids)

    def fulfil_gdpr_request(self) -> FulfilRequest:
        return FulfilRequest(
            ExportCustomerData(self.phones, self.clock), RedactCustomer(self.phones, self.clock)
        )

    def start_data_request(self) -> StartDataRequest:
        return StartDataRequest(
            self.uow, self.phones, self.receive_gdpr_request(), self.fulfil_gdpr_request()
        )

    def purge_shop(self) -> PurgeShop:
        return PurgeShop(self.uow, self.clock)

    def fulfil_overdue_gdpr(self) -> FulfilOverdueRequests:
        return FulfilOverdueRequests(
            self.uow, self.fulfil_gdpr_request(), self.purge_shop(), self.clock
        )

    def webhook_handlers(self) -> dict[str, WebhookHandler]:
        """Topic -> handler. A topic missing here is marked ignored when it arrives."""
        sync = ContactSync(self.phones, self.country_zones, self.clock, self.ids)
        record = RecordConsent(self.clock)
        checkout = HandleCheckoutOrOrder(sync, record)
        receive, fulfil = self.receive_gdpr_request(), self.fulfil_gdpr_request()
        return {
            "app/uninstalled": HandleAppUninstalled(self.clock),
            "shop/update": HandleShopUpdate(),
            "app_purchases_one_time/update": HandlePurchaseUpdate(),
            "customers/create": HandleCustomerUpsert(sync),
            "customers/update": HandleCustomerUpsert(sync),
            "customers_marketing_consent/update": HandleMarketingConsent(sync, record),
            "checkouts/create": checkout,
            "checkouts/update": checkout,
            "orders/create": checkout,
            "customers/data_request": HandleCustomerDataRequest(receive, fulfil),
            "customers/redact": HandleCustomerRedact(receive, fulfil),
            "shop/redact": HandleShopRedact(receive),
        }

    @cached_property
    def sms_gateway(self) -> MittoSmsGateway | SimulatorSmsGateway:
        settings = self.settings
        reports = f"{settings.app_url}/webhooks/mitto/dlr?token={settings.mitto_webhook_secret}"
        if settings.sms_provider == "mitto" and settings.mitto_api_key:
            return MittoSmsGateway(
                settings.mitto_api_key, settings.mitto_base_url, callback_url=reports
            )
        return SimulatorSmsGateway(reports, delay_seconds=settings.simulator_report_delay_seconds)

    def queue_messages(self) -> QueueMessages:
        return QueueMessages(self.clock, self.ids, self.price_list, DebitWallet())

    def storefront_signup(self) -> StorefrontSignUp:
        def confirm_link(shop: Shop, contact_id: uuid.UUID) -> str:
            token = self.tokens.sign("confirm", str(contact_id), ttl_seconds=CONFIRM_LINK_TTL)
            return f"https://{shop.domain}{STOREFRONT_PATH}/confirm?t={token}"

        return StorefrontSignUp(
            self.contact_for_phone(), RecordConsent(self.clock), self.queue_messages(), confirm_link
        )

    def deliver_messages(self) -> DeliverMessages:
        settings = self.settings
        limits = DeliveryLimits(
            provider=_per_second(settings.sms_rate_per_second),
            shop=_per_second(settings.sms_shop_rate_per_second),
            lease=timedelta(seconds=max(settings.stalled_worker_seconds, 5.0)),
        )
        return DeliverMessages(
            self.uow, self.sms_gateway, self.rate_limiter, self.clock, limits, settings.sms_sender
        )

    def sweep_messages(self) -> SweepMessages:
        return SweepMessages(self.uow, self.clock)

    def index_message_phones(self) -> IndexMessagePhones:
        return IndexMessagePhones(self.uow)

    def record_delivery_report(self) -> RecordDeliveryReport:
        return RecordDeliveryReport(self.uow, self.clock)

    def receive_inbound_text(self) -> ReceiveInboundText:
        return ReceiveInboundText(
            self.uow,
            self.clock,
            self.ids,
            self.phones,
            self.contact_for_phone(),
            RecordConsent(self.clock),
            self.queue_messages(),
        )

    async def prune_webhook_events(self) -> int:
        return await PruneWebhookEvents(
            self.uow, self.clock, retention_days=self.settings.webhook_retention_days
        )()

    def worker_options(self, queues: Iterable[str] | None = None) -> dict[str, Any]:
        return {
            "delete_jobs": delete_jobs_policy(queues),
            "worker_middleware": [JobObserver(self.sessions)],
            "update_heartbeat_interval": self.settings.worker_heartbeat_seconds,
            "stalled_worker_timeout": self.settings.stalled_worker_seconds,
        }

    async def aclose(self) -> None:
        if "sms_gateway" in self.__dict__:
            await self.sms_gateway.aclose()
        await self.http.aclose()
        await self.engine.dispose()


def _per_second(rate: int) -> RateLimit | None:
    """A messages-per-second limit with one second of burst; 0 turns it off."""
    return RateLimit(rate=rate, period_seconds=1.0, burst=rate) if rate else None


def build_container(
    settings: Settings,
    *,
    database_url: str | None = None,
    embedded: EmbeddedPostgres | None = None,
    extra_blueprints: BlueprintFactory | None = None,
    application_name: str = "blossom",
    pre_ping: bool = True,
) -> Container:
    configure_logging(settings.log_level)
    configure_tracing(settings.otel_traces_exporter, settings.otel_service_name)
    if database_url is None:
        database_url, embedded = resolve_database_url(settings)
    engine = create_app_engine(database_url, application_name=application_name, pre_ping=pre_ping)
    sessions = session_factory(engine)
    cipher = AesGcmCipher(settings.encryption_keys)
    blind_index = HmacBlindIndex(settings.blind_index_key)
    container = Container(
        settings=settings,
        database_url=database_url,
        engine=engine,
        sessions=sessions,
        uow=UnitOfWorkFactory(sessions, cipher, blind_index, job_meta=job_meta),
        cipher=cipher,
        http=httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0)),
        blind_index=blind_index,
        embedded=embedded,
    )
    from interfaces.jobs.registry import all_blueprints

    blueprints = dict(all_blueprints(container))
    if extra_blueprints:
        blueprints.update(extra_blueprints(container))
    container.queue = create_queue_app(database_url, blueprints)
    return container


@contextlib.asynccontextmanager
async def running(container: Container) -> AsyncIterator[Container]:
    """Open the queue's connection pool for the container's lifetime."""
    async with container.queue.open_async():
        try:
            yield container
        finally:
            await container.aclose()
