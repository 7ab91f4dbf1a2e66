# ruff: noqa: RUF001  (the curly quote is the point: it forces UCS-2)
"""Wallet, ledger, pricing and estimates through the admin API."""

from __future__ import annotations

import uuid

import pytest

from application.billing.debit_wallet import DebitWallet
from application.billing.fund_wallet import TopUpWallet
from application.messaging.queue_messages import OutgoingMessage, QueueMessages
from domain.billing import DEFAULT_PRICE_LIST
from domain.messages import MessageCategory
from interfaces.bootstrap import build_container
from interfaces.http.app import create_app
from tests.conftest import add_shop
from tests.integration.test_session_and_proxy import _token
from tests.support.http import client
from tests.support.messaging import add_contacts, fund, phone_number
from tests.support.settings import make_settings

pytestmark = pytest.mark.usefixtures("clean_db")


def _auth(shop) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(shop.domain)}"}


async def test_a_shop_without_a_wallet_yet_shows_the_threshold_its_wallet_will_have(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        before = (await http.get("/api/v1/wallet", headers=_auth(shop))).json()
    async with container.uow.for_shop(shop.id) as uow:
        await uow.wallet.ensure()
        made = await uow.wallet.balance()
        await uow.commit()
    assert before["low_balance_threshold"] == made.low_balance_threshold
    assert (before["balance"], before["low"]) == (0, True)


async def test_wallet_and_its_ledger_pages_for_the_token_shop_only(container):
    shop, other = await add_shop(container), await add_shop(container)
    async with container.uow.for_shop(shop.id) as uow:
        await TopUpWallet()(uow, credits=2000, reference="p1", source="test")
        for _ in range(3):
            await DebitWallet()(uow, message_id=uuid.uuid4(), credits=5, price_version="v")
        await uow.commit()
    async with client(create_app(container)) as http:
        wallet = (await http.get("/api/v1/wallet", headers=_auth(shop))).json()
        first = (
            await http.get("/api/v1/wallet/transactions", headers=_auth(shop), params={"limit": 2})
        ).json()
        rest = (
            await http.get(
                "/api/v1/wallet/transactions",
                headers=_auth(shop),
                params={"cursor": first["next_cursor"]},
            )
        ).json()
        others = (await http.get("/api/v1/wallet/transactions", headers=_auth(other))).json()
    assert wallet == {
        "balance": 1985,
        "reserved": 15,
        "low_balance_threshold": 1000,
        "low": False,
        "unit": "credits",
    }
    kinds = [t["kind"] for t in first["items"] + rest["items"]]
    assert sorted(kinds) == ["reserve", "reserve", "reserve", "topup"]
    assert rest["next_cursor"] is None and others["items"] == []


async def test_pricing_and_estimates_show_segments_encoding_culprits_and_credits(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        pricing = (await http.get("/api/v1/pricing", headers=_auth(shop))).json()
        quote = (
            await http.post(
                "/api/v1/estimates",
                headers=_auth(shop),
                json={
                    "text": "Hi ’there’, 20% off today",
                    "countries": ["us", "de", "zz"],
                },
            )
        ).json()
        empty = await http.post(
            "/api/v1/estimates", headers=_auth(shop), json={"text": "", "countries": ["US"]}
        )
    us = pricing["credits_per_segment"]["US"]
    assert quote["encoding"] == "ucs2" and quote["segments"] == 1
    assert quote["culprits"] == [{"char": "’", "count": 2, "replacement": "'"}]
    by_country = {c["country"]: c for c in quote["countries"]}
    assert by_country["US"]["credits"] == us
    assert by_country["ZZ"]["credits_per_segment"] == pricing["default_credits_per_segment"]
    assert empty.status_code == 400


async def test_merchant_sets_the_low_balance_threshold(container):
    shop = await add_shop(container)
    async with client(create_app(container)) as http:
        updated = await http.patch(
            "/api/v1/wallet", headers=_auth(shop), json={"low_balance_threshold": 5}
        )
        bad = await http.patch(
            "/api/v1/wallet", headers=_auth(shop), json={"low_balance_threshold": -1}
        )
    assert updated.status_code == 200
    assert updated.json()["low_balance_threshold"] == 5 and updated.json()["low"] is True
    assert bad.status_code == 400


async def test_a_marketing_estimate_costs_what_queueing_the_same_text_charges(container):
    # Queueing adds the brand and the opt-out footer to a marketing text (sms.md section 6);
    # 150 GSM-7 characters fit one segment as written but not once they are added.
    shop = await add_shop(container)
    [contact] = await add_contacts(container, shop, [phone_number(1)])
    await fund(container, shop, 10_000)
    words = ("Summer sale today only " * 7)[:150]
    async with container.uow.for_shop(shop.id) as uow:
        fresh = await uow.shops.get(shop.id)
        queue = QueueMessages(container.clock, container.ids, container.price_list, DebitWallet())
        [queued] = await queue(
            uow,
            fresh,
            [
                OutgoingMessage(
                    text=words,
                    category=MessageCategory.MARKETING,
                    source="test",
                    idempotency_key="estimate-check",
                    contact_id=contact.id,
                )
            ],
        )
        await uow.commit()
    async with container.uow.for_shop(shop.id) as uow:
        message = await uow.messages.get(queued.message_id)
    async with client(create_app(container)) as http:
        quote = await http.post(
            "/api/v1/estimates",
            headers=_auth(shop),
            json={"text": words, "countries": ["US"], "category": "marketing"},
        )
    assert quote.status_code == 200, quote.text
    [us] = quote.json()["countries"]
    assert message.segments == 2 and quote.json()["segments"] == message.segments
    assert us["credits"] == message.credits


async def test_different_contract_prices_are_charged_under_different_versions(
    database_url, data_dir
):
    # A message keeps the version it was charged under so it can be told which prices
    # applied; a PRICE_OVERRIDES change (new Mitto contract) must therefore change it.
    versions, us_prices = [], []
    for overrides in ("US:12", "US:15", "US:15"):
        built = build_container(
            make_settings(data_dir, PRICE_OVERRIDES=overrides), database_url=database_url
        )
        versions.append(built.price_list.version)
        us_prices.append(built.price_list.credits_per_segment("US"))
        await built.aclose()
    assert us_prices == [12, 15, 15]
    assert versions[0] != versions[1] and versions[1] == versions[2]
    assert all(v.startswith(DEFAULT_PRICE_LIST.version + "+") for v in versions)
