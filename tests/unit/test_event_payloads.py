"""Reading Shopify payload values: whatever a field holds, the reader answers or says None."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from application.events.payloads import instant, locale, shopify_id, text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (207119551, 207119551),
        ("207119551", 207119551),
        (2**63 - 1, 2**63 - 1),
        (2**63, None),  # past a bigint
        ("99999999999999999999", None),
        (0, None),
        (-5, None),
        (True, None),
        ("²", None),
        ("abc", None),
        (None, None),
        ("", None),
    ],
)
def test_shopify_id(value, expected):
    assert shopify_id(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-05-04T12:15:30+02:00", datetime(2026, 5, 4, 10, 15, 30, tzinfo=UTC)),
        ("2026-05-04T10:15:30Z", datetime(2026, 5, 4, 10, 15, 30, tzinfo=UTC)),
        ("2026-05-04T10:15:30", datetime(2026, 5, 4, 10, 15, 30, tzinfo=UTC)),
        ("0001-01-01T00:00:00+05:00", None),
        ("yesterday", None),
        (1717000000, None),
        (None, None),
    ],
)
def test_instant_is_utc_or_none(value, expected):
    parsed = instant(value)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en", "en"),
        ("pt-BR", "pt-BR"),
        ("zh_Hant_TW", "zh_Hant_TW"),
        ("x" * 17, None),
        ("english please", None),
        (7, None),
        (None, None),
    ],
)
def test_locale(value, expected):
    assert locale(value) == expected


def test_text_cuts_to_length_and_skips_containers():
    assert text(12345) == "12345"
    assert text("r" * 100, longest=64) == "r" * 64
    assert text({"id": 1}) is None and text("") is None and text(None) is None
