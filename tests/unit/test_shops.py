"""The shop aggregate: Shopify's name and locale are taken only where well-formed."""

from __future__ import annotations

import uuid

from domain.shops import Shop


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
