"""A fake Mitto wired to a container of its own, and contacts to text."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from application.billing.fund_wallet import TopUpWallet
from domain.consent import ConsentSource, ConsentState, next_event
from domain.contacts import Contact
from domain.shops import Shop
from infrastructure.mitto.fake_server import FakeMitto
from interfaces.bootstrap import Container, build_container
from tests.support.settings import make_settings
from tests.support.tasks import testing_blueprints

MITTO_KEY = "test-mitto-key"
CALLBACK_SECRET = "test-callback-secret"
WORDING = "Texts from the test shop. Reply STOP to opt out."


class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def mitto_env(fake: FakeMitto, **overrides: str) -> dict[str, str]:
    return {
        "MITTO_API_KEY": MITTO_KEY,
        "MITTO_BASE_URL": fake.base_url,
        "MITTO_WEBHOOK_SECRET": CALLBACK_SECRET,
        "SMS_RATE_PER_SECOND": "0",
        "SMS_SHOP_RATE_PER_SECOND": "0",
        **overrides,
    }


@asynccontextmanager
async def fake_mitto_container(
    database_url: str, data_dir: Path, **env: str
) -> AsyncIterator[tuple[FakeMitto, Container]]:
    async with FakeMitto(MITTO_KEY) as fake:
        settings = make_settings(data_dir, **mitto_env(fake, **env))
        container = build_container(
            settings, database_url=database_url, extra_blueprints=testing_blueprints
        )
        async with container.queue.open_async():
            try:
                yield fake, container
            finally:
                await container.aclose()


def phone_number(n: int, country_code: str = "1", area: str = "415") -> str:
    """A valid, distinct number per n (US 415-555-01xx style numbers are reserved for
    fiction but fail validation, so use real-looking exchanges)."""
    return f"+{country_code}{area}2{n:06d}"


async def add_contacts(
    container: Container,
    shop: Shop,
    phones: Sequence[str],
    *,
    state: ConsentState = ConsentState.SUBSCRIBED,
    timezone: str | None = "America/Los_Angeles",
    phone_timezones: Sequence[str] = (),
    country: str = "US",
) -> list[Contact]:
    """Contacts with their consent recorded in the ledger, in two round trips."""
    now = datetime.now(UTC)
    contacts = [
        Contact(
            id=uuid.uuid4(),
            shop_id=shop.id,
            phone=phone,
            country=country,
            timezone=timezone,
            phone_timezones=tuple(phone_timezones),
            consent_state=state,
            consent_updated_at=now,
        )
        for phone in phones
    ]
    events = [
        next_event(
            None,
            contact_id=c.id,
            current_state=ConsentState.UNKNOWN,
            new_state=state,
            source=ConsentSource.ADMIN,
            actor="test",
            occurred_at=now,
            wording=WORDING,
        )
        for c in contacts
    ]
    async with container.uow.for_shop(shop.id) as uow:
        await uow.contacts.add_many(contacts, now)
        await uow.consent.append([e for e in events if e is not None])
        await uow.commit()
    return contacts


async def add_perth_and_sydney_contact(container: Container, shop: Shop) -> Contact:
    """A subscribed Australian mobile whose number spans Perth and Sydney."""
    [contact] = await add_contacts(
        container,
        shop,
        ["+61412345678"],
        timezone=None,
        phone_timezones=["Australia/Sydney", "Australia/Perth"],
        country="AU",
    )
    return contact


async def fund(container: Container, shop: Shop, credits: int) -> None:
    async with container.uow.for_shop(shop.id) as uow:
        await TopUpWallet()(uow, credits=credits, reference=f"test-{uuid.uuid4()}", source="test")
        await uow.commit()


REFUSED_AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


async def refuse_number(
    container: Container, shop: Shop, contact_id: uuid.UUID, phone: str
) -> None:
    """What a delivery records when Mitto answers that `phone` is no valid receiver."""
    async with container.uow.for_shop(shop.id) as uow:
        await uow.contacts.mark_phones_invalid([(contact_id, phone)], REFUSED_AT)
        await uow.commit()


async def set_quiet_hours(container: Container, shop: Shop, start: str, end: str) -> None:
    """The shop's own quiet hours, as a PATCH of its settings would set them."""
    async with container.uow.for_shop(shop.id) as uow:
        current = await uow.shops.get(shop.id, for_update=True)
        current.settings = {**current.settings, "quiet_hours": {"start": start, "end": end}}
        await uow.shops.save(current)
        await uow.commit()


async def set_messaging(container: Container, shop: Shop, **settings: object) -> None:
    """Change some of the shop's messaging settings, as a PATCH of its settings would."""
    async with container.uow.for_shop(shop.id) as uow:
        current = await uow.shops.get(shop.id, for_update=True)
        current.settings = {
            **current.settings,
            "messaging": {**(current.settings.get("messaging") or {}), **settings},
        }
        await uow.shops.save(current)
        await uow.commit()
