"""The price list: lookups, per-deployment overrides, validation, and message estimates."""

# Texts with curly quotes are written as they look: that is what the tests are about.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest

from domain.billing import DEFAULT_PRICE_LIST, Estimate, PriceList, estimate
from domain.errors import InvalidValue
from domain.messaging import Encoding
from infrastructure.settings import SettingsError, load_settings
from tests.support.settings import make_environ

PRICES = PriceList(
    version="2026-11-01",
    default_credits=100,
    credits={"US": 11, "GR": 70},
    currency_note="1 credit = 0.001 USD",
)

# fmt: off
REQUIRED_COUNTRIES = {
    "US", "CA", "GB", "IE", "DE", "FR", "ES", "IT", "NL", "BE", "AT", "CH", "SE", "NO", "DK",
    "FI", "PL", "PT", "GR", "CZ", "RO", "HU", "AU", "NZ", "JP", "KR", "SG", "HK", "IN", "BR",
    "MX", "AR", "CL", "CO", "ZA", "AE", "SA", "IL", "TR", "UA",
}
# fmt: on


def test_default_list_covers_the_common_countries() -> None:
    assert len(DEFAULT_PRICE_LIST.credits) >= 40
    assert set(DEFAULT_PRICE_LIST.credits) >= REQUIRED_COUNTRIES
    assert DEFAULT_PRICE_LIST.version == "2026-11-01"
    # The shipped tiers keep North America cheaper than western Europe.
    assert DEFAULT_PRICE_LIST.credits["US"] < DEFAULT_PRICE_LIST.credits["DE"]


def test_lookup_by_country() -> None:
    assert PRICES.credits_per_segment("US") == 11
    assert PRICES.credits_per_segment("gr") == 70  # tolerant of case and spaces
    assert PRICES.credits_per_segment(" GR ") == 70


@pytest.mark.parametrize("country", [None, "", "FR", "XX", "USA"])
def test_unknown_or_missing_country_costs_the_default(country: str | None) -> None:
    assert PRICES.credits_per_segment(country) == 100


def test_overrides_make_a_new_version_and_leave_the_original_alone() -> None:
    contract = PRICES.with_overrides({"GR": 42, "CY": 55}, "mitto-2026-11")
    assert contract.version == "2026-11-01+mitto-2026-11"
    assert contract.credits_per_segment("GR") == 42
    assert contract.credits_per_segment("CY") == 55
    assert contract.credits_per_segment("US") == 11
    assert contract.default_credits == 100
    assert PRICES.version == "2026-11-01"
    assert dict(PRICES.credits) == {"US": 11, "GR": 70}


def test_overrides_are_validated_like_the_list() -> None:
    with pytest.raises(InvalidValue):
        PRICES.with_overrides({"GR": 0}, "mitto")
    with pytest.raises(InvalidValue):
        PRICES.with_overrides({"gr": 42}, "mitto")
    with pytest.raises(InvalidValue):
        PRICES.with_overrides({"GR": 42}, "")
    with pytest.raises(InvalidValue):
        PRICES.with_overrides({"GR": 42}, "has space")


def test_the_list_cannot_be_changed_through_its_mapping_or_the_source_dict() -> None:
    source = {"US": 11}
    prices = PriceList("v1", 100, source, "")
    source["US"] = 1
    assert prices.credits_per_segment("US") == 11
    with pytest.raises(TypeError):
        prices.credits["US"] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("version", "default_credits", "credits"),
    [
        ("", 100, {}),
        ("has space", 100, {}),
        ("v" * 65, 100, {}),
        ("v1", 0, {}),
        ("v1", -5, {}),
        ("v1", True, {}),
        ("v1", 1.5, {}),
        ("v1", 100, {"US": 0}),
        ("v1", 100, {"US": -1}),
        ("v1", 100, {"US": 2.5}),
        ("v1", 100, {"us": 11}),
        ("v1", 100, {"USA": 11}),
        ("v1", 100, {"U": 11}),
        ("v1", 100, {"U1": 11}),
    ],
)
def test_invalid_lists_are_refused(version: str, default_credits: object, credits: dict) -> None:
    with pytest.raises(InvalidValue):
        PriceList(version, default_credits, credits, "")  # type: ignore[arg-type]


def test_estimate_is_segments_times_the_country_price() -> None:
    assert estimate("a" * 161, "gr", PRICES) == Estimate(
        segments=2, encoding=Encoding.GSM7, credits_per_segment=70, credits=140, country="GR"
    )
    assert estimate("Hi ’there’ " + "x" * 60, "US", PRICES) == Estimate(
        segments=2, encoding=Encoding.UCS2, credits_per_segment=11, credits=22, country="US"
    )


def test_estimate_for_an_unknown_country_uses_the_default() -> None:
    assert estimate("Hello", None, PRICES) == Estimate(1, Encoding.GSM7, 100, 100, None)
    assert estimate("😀" * 36, "XX", PRICES).credits == 200


def test_estimate_of_empty_text_is_refused() -> None:
    with pytest.raises(InvalidValue, match="empty"):
        estimate("", "US", PRICES)


@pytest.mark.parametrize("overrides", ["US:0", "US:12,GB:0", "US:²"])
def test_a_price_override_that_no_price_list_accepts_stops_the_start(tmp_path, overrides):
    # Accepted here, "US:0" made every later price lookup raise (the whole list is
    # refused), so every estimate and every queued text failed instead of the start.
    with pytest.raises(SettingsError) as raised:
        load_settings(make_environ(tmp_path, PRICE_OVERRIDES=overrides))
    assert raised.value.variable == "PRICE_OVERRIDES"


def test_price_overrides_are_read_as_credits_per_country(tmp_path):
    settings = load_settings(make_environ(tmp_path, PRICE_OVERRIDES="us:12, GB:40"))
    assert settings.price_overrides == {"US": 12, "GB": 40}
    assert DEFAULT_PRICE_LIST.with_overrides(settings.price_overrides, "x").credits["GB"] == 40
