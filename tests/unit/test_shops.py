"""The shop aggregate: Shopify's name and locale are taken only where well-formed; its
credentials keep their tokens to themselves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from domain.shops import Shop, ShopCredentials


def _shop() -> Shop:
    return Shop(id=uuid.uuid4(), domain="a.myshopify.com", name="Old", currency="USD")


def test_refresh_takes_well_formed_values():
    shop = _shop()
    shop.refresh(name=" Blossom ", currency="EUR", time_zone="Europe/Paris", country="FR")
    assert (shop.name, shop.currency, shop.timezone, shop.country) == (
        "Blossom",
        "EUR",
        "Europe/Paris",
        "FR",
    )


def test_refresh_keeps_what_it_has_for_missing_or_malformed_values_and_cuts_a_long_name():
    shop = _shop()
    shop.refresh(name="n" * 300, currency="euro", time_zone="x" * 65, country="001")
    assert (shop.name, shop.currency, shop.timezone, shop.country) == (
        "n" * 255,
        "USD",
        "UTC",
        "US",
    )
    shop.refresh(name="  ", currency=None, time_zone=7, country=["FR"])
    assert (shop.name, shop.currency, shop.timezone, shop.country) == (
        "n" * 255,
        "USD",
        "UTC",
        "US",
    )


def _at(hour: int) -> datetime:
    return datetime(2026, 11, 20, hour, tzinfo=UTC)


def test_refresh_drops_a_change_no_newer_than_the_last_one_applied():
    shop = _shop()
    shop.refresh(name="Noon", currency="EUR", time_zone=None, country=None, as_of=_at(12))
    shop.refresh(name="Ten", currency="GBP", time_zone=None, country=None, as_of=_at(10))
    shop.refresh(name="Again", currency="GBP", time_zone=None, country=None, as_of=_at(12))
    assert (shop.name, shop.currency, shop.shopify_updated_at) == ("Noon", "EUR", _at(12))


def test_refresh_applies_a_newer_change_and_one_without_a_time_keeping_the_last_time():
    shop = _shop()
    shop.refresh(name="Ten", currency=None, time_zone=None, country=None, as_of=_at(10))
    shop.refresh(name="Noon", currency=None, time_zone=None, country=None, as_of=_at(12))
    shop.refresh(name="Untimed", currency=None, time_zone=None, country=None)
    assert (shop.name, shop.shopify_updated_at) == ("Untimed", _at(12))


def test_support_contact_is_the_merchants_address_else_the_shop_domain():
    shop = _shop()
    assert shop.support_contact == "a.myshopify.com"
    shop.settings = {"support_email": "help@blossom.example"}
    assert shop.support_contact == "help@blossom.example"
    shop.settings = {"support_email": ""}  # cleared in the settings
    assert shop.support_contact == "a.myshopify.com"


def test_credentials_never_print_their_tokens() -> None:
    credentials = ShopCredentials("shpat_secret", ("read_customers",), refresh_token="shprt_secret")
    assert "secret" not in repr(credentials) and "secret" not in str(credentials)
    assert "read_customers" in repr(credentials)
