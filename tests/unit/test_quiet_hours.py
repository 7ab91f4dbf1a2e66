"""Quiet hours (contract sms.md §4): windows, jurisdictions, shop overrides, clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidValue
from domain.quiet_hours import (
    DEFAULT_RULE,
    RULES,
    SEARCH_DAYS,
    FrequencyCap,
    SendingRule,
    ShopQuietHours,
    Window,
    _instant,
    cap_for,
    easter_sunday,
    french_public_holidays,
    next_send_time,
    next_send_time_in_zones,
    rule_for,
    subdivision_for,
    zone_or_utc,
)
from domain.us_area_codes import US_AREA_CODES

DEFAULT_SHOP = ShopQuietHours()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int) -> datetime:
    """A local wall-clock time as the UTC instant the pipeline would hold."""
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def send_time(
    at: datetime,
    zone: str | None,
    *,
    country: str | None = None,
    subdivision: str | None = None,
    shop: ShopQuietHours = DEFAULT_SHOP,
) -> datetime:
    return next_send_time(at, zone, country=country, subdivision=subdivision, shop=shop)


# --- default window 08:00-21:00 ---------------------------------------------------------


def test_inside_the_window_is_unchanged() -> None:
    at = local("America/New_York", 2025, 6, 10, 11, 17, 42)
    assert send_time(at, "America/New_York") is at


def test_window_start_is_inclusive_and_end_exclusive() -> None:
    zone = "America/New_York"
    start = local(zone, 2025, 6, 10, 8, 0)
    assert send_time(start, zone) == start
    last = local(zone, 2025, 6, 10, 20, 59, 59)
    assert send_time(last, zone) == last
    assert send_time(local(zone, 2025, 6, 10, 21, 0), zone) == local(zone, 2025, 6, 11, 8, 0)


@pytest.mark.parametrize(
    ("zone", "late_evening", "expected"),
    [
        # East of UTC: 22:30 EEST (UTC+3) -> 08:00 EEST next day = 05:00 UTC.
        ("Europe/Athens", utc(2025, 6, 10, 19, 30), utc(2025, 6, 11, 5, 0)),
        # Far east: 22:30 JST (UTC+9) -> 08:00 JST next day = 23:00 UTC the same UTC day.
        ("Asia/Tokyo", utc(2025, 6, 10, 13, 30), utc(2025, 6, 10, 23, 0)),
        # West: 22:30 PDT (UTC-7) is already the next UTC day; 08:00 PDT = 15:00 UTC.
        ("America/Los_Angeles", utc(2025, 6, 11, 5, 30), utc(2025, 6, 11, 15, 0)),
    ],
)
def test_late_evening_defers_to_next_morning(
    zone: str, late_evening: datetime, expected: datetime
) -> None:
    assert late_evening.astimezone(ZoneInfo(zone)).time() == time(22, 30)
    assert send_time(late_evening, zone) == expected


def test_early_morning_defers_to_eight_the_same_day() -> None:
    at = local("America/New_York", 2025, 6, 10, 6, 0)  # 10:00 UTC
    assert send_time(at, "America/New_York") == utc(2025, 6, 10, 12, 0)


@pytest.mark.parametrize(
    ("zone", "late_evening", "expected"),
    [
        # Clocks spring forward overnight (9 March 2025): 22:30 EST -> 08:00 EDT = 12:00 UTC.
        ("America/New_York", utc(2025, 3, 9, 3, 30), utc(2025, 3, 9, 12, 0)),
        # Clocks fall back overnight (2 November 2025): 22:30 EDT -> 08:00 EST = 13:00 UTC.
        ("America/New_York", utc(2025, 11, 2, 2, 30), utc(2025, 11, 2, 13, 0)),
        # Berlin springs forward on 30 March 2025: 22:30 CET -> 08:00 CEST = 06:00 UTC.
        ("Europe/Berlin", utc(2025, 3, 29, 21, 30), utc(2025, 3, 30, 6, 0)),
        # ... and falls back on 26 October 2025: 22:30 CEST -> 08:00 CET = 07:00 UTC.
        ("Europe/Berlin", utc(2025, 10, 25, 20, 30), utc(2025, 10, 26, 7, 0)),
    ],
)
def test_clock_change_nights(zone: str, late_evening: datetime, expected: datetime) -> None:
    assert late_evening.astimezone(ZoneInfo(zone)).time() == time(22, 30)
    assert send_time(late_evening, zone) == expected


def test_wall_clock_edges_in_a_skipped_or_repeated_hour() -> None:
    """A window starts at the later reading of a wall time and ends at the earlier one, so
    every instant inside it is inside on the recipient's clock (and nothing crashes)."""
    new_york = ZoneInfo("America/New_York")
    skipped = date(2025, 3, 9)  # 02:00 EST jumps to 03:00 EDT: 02:30 never happens
    assert _instant(skipped, time(2, 30), new_york, latest=True) == utc(2025, 3, 9, 7, 30)
    assert _instant(skipped, time(2, 30), new_york, latest=False) == utc(2025, 3, 9, 6, 30)
    repeated = date(2025, 11, 2)  # 02:00 EDT falls back to 01:00 EST: 01:30 happens twice
    assert _instant(repeated, time(1, 30), new_york, latest=True) == utc(2025, 11, 2, 6, 30)
    assert _instant(repeated, time(1, 30), new_york, latest=False) == utc(2025, 11, 2, 5, 30)
    ordinary = date(2025, 6, 10)
    assert _instant(ordinary, time(8), new_york, latest=True) == utc(2025, 6, 10, 12, 0)
    assert _instant(ordinary, time(8), new_york, latest=False) == utc(2025, 6, 10, 12, 0)


def test_unknown_or_missing_timezone_falls_back_to_utc() -> None:
    at = utc(2025, 6, 10, 22, 30)
    for zone in ("Mars/Olympus_Mons", "", None, "../../etc/passwd", "not a zone"):
        assert send_time(at, zone) == utc(2025, 6, 11, 8, 0)
    assert zone_or_utc("Europe/Paris") == ZoneInfo("Europe/Paris")


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(InvalidValue, match="timezone-aware"):
        send_time(datetime(2025, 6, 10, 12, 0), "UTC")


def test_an_aware_non_utc_instant_is_accepted() -> None:
    at = datetime(2025, 6, 10, 22, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert send_time(at, "Asia/Tokyo") == utc(2025, 6, 10, 23, 0)


# --- jurisdictions ------------------------------------------------------------------------


def test_florida_number_at_half_past_eight_waits_until_the_next_morning() -> None:
    subdivision = subdivision_for("+13055551234")
    assert subdivision == "US-FL"
    at = local("America/New_York", 2025, 6, 10, 20, 30)
    assert send_time(at, "America/New_York", country="US", subdivision=subdivision) == utc(
        2025, 6, 11, 12, 0
    )
    # The same minute is fine under the default rule (New York).
    assert send_time(at, "America/New_York", country="US", subdivision="US-NY") == at


@pytest.mark.parametrize("state", ["US-FL", "US-OK", "US-MD", "US-WA", "US-MS", "US-NJ"])
def test_eight_to_eight_states(state: str) -> None:
    assert RULES[state] == SendingRule.every_day(time(8), time(20))


def test_connecticut_starts_at_nine() -> None:
    zone = "America/New_York"
    at = local(zone, 2025, 6, 10, 8, 30)
    assert send_time(at, zone, country="US", subdivision="US-CT") == local(zone, 2025, 6, 10, 9)
    late = local(zone, 2025, 6, 10, 20, 0)
    assert send_time(late, zone, country="US", subdivision="US-CT") == local(zone, 2025, 6, 11, 9)


def test_texas_sunday_starts_at_noon_and_weekdays_at_nine() -> None:
    zone = "America/Chicago"
    sunday = local(zone, 2025, 6, 8, 10, 0)
    assert sunday.astimezone(ZoneInfo(zone)).weekday() == 6
    assert send_time(sunday, zone, country="US", subdivision="US-TX") == utc(2025, 6, 8, 17, 0)
    monday = local(zone, 2025, 6, 9, 8, 30)
    assert send_time(monday, zone, country="US", subdivision="TX") == local(zone, 2025, 6, 9, 9)
    assert send_time(monday + timedelta(hours=1), zone, country="US", subdivision="US-TX") == (
        monday + timedelta(hours=1)
    )


def test_france_skips_sunday() -> None:
    saturday_night = local("Europe/Paris", 2025, 6, 14, 22, 30)  # 20:30 UTC
    assert send_time(saturday_night, "Europe/Paris", country="FR") == utc(2025, 6, 16, 6, 0)
    sunday_noon = local("Europe/Paris", 2025, 6, 15, 12, 0)
    assert send_time(sunday_noon, "Europe/Paris", country="fr") == utc(2025, 6, 16, 6, 0)


def test_france_skips_bastille_day() -> None:
    # 14 July 2025 is a Monday: Saturday night -> Sunday skipped -> holiday skipped -> Tuesday.
    saturday_night = local("Europe/Paris", 2025, 7, 12, 22, 30)
    assert send_time(saturday_night, "Europe/Paris", country="FR") == utc(2025, 7, 15, 6, 0)


def test_france_skips_easter_monday() -> None:
    # Easter 2025 is 20 April; Easter Monday 21 April.
    saturday_night = local("Europe/Paris", 2025, 4, 19, 22, 30)
    assert send_time(saturday_night, "Europe/Paris", country="FR") == utc(2025, 4, 22, 6, 0)


def test_france_allows_until_ten_only_when_the_shop_does() -> None:
    weekday_late = local("Europe/Paris", 2025, 6, 10, 21, 30)
    # The default shop hours (quiet from 21:00) are stricter than France's 22:00.
    assert send_time(weekday_late, "Europe/Paris", country="FR") == utc(2025, 6, 11, 6, 0)
    open_late = ShopQuietHours(quiet_start=time(23, 0), quiet_end=time(7, 0))
    assert send_time(weekday_late, "Europe/Paris", country="FR", shop=open_late) == weekday_late


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (1818, date(1818, 3, 22)),  # earliest possible
        (1943, date(1943, 4, 25)),  # latest possible
        (2000, date(2000, 4, 23)),
        (2019, date(2019, 4, 21)),
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2038, date(2038, 4, 25)),
    ],
)
def test_easter_sunday(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter
    assert easter.weekday() == 6


def test_french_public_holidays_2025() -> None:
    assert french_public_holidays(2025) == {
        date(2025, 1, 1),
        date(2025, 4, 21),  # Easter Monday
        date(2025, 5, 1),
        date(2025, 5, 8),
        date(2025, 5, 29),  # Ascension Thursday
        date(2025, 6, 9),  # Whit Monday
        date(2025, 7, 14),
        date(2025, 8, 15),
        date(2025, 11, 1),
        date(2025, 11, 11),
        date(2025, 12, 25),
    }


def test_rule_lookup() -> None:
    assert rule_for(None, None) is DEFAULT_RULE
    assert rule_for("US", None) is DEFAULT_RULE
    assert rule_for("US", "US-NY") is DEFAULT_RULE
    assert rule_for("US", "fl") is RULES["US-FL"]
    assert rule_for(None, "us-ct") is RULES["US-CT"]
    assert rule_for("FR", "FR-75") is RULES["FR"]
    assert rule_for("DE", None) is DEFAULT_RULE


@pytest.mark.parametrize("state", ["US-FL", "US-OK", "US-MD", "fl", "ok", "md"])
def test_florida_oklahoma_and_maryland_allow_three_marketing_texts_a_day(state: str) -> None:
    assert cap_for("US", state) == FrequencyCap(3, timedelta(hours=24))


@pytest.mark.parametrize(
    ("country", "subdivision"), [("US", "US-NY"), ("US", None), ("FR", None), (None, None)]
)
def test_elsewhere_no_state_caps_marketing(country: str | None, subdivision: str | None) -> None:
    assert cap_for(country, subdivision) is None


# --- shop overrides -------------------------------------------------------------------------


def test_a_stricter_shop_window_applies() -> None:
    zone = "America/New_York"
    shop = ShopQuietHours(quiet_start=time(18, 0), quiet_end=time(10, 0))
    morning = local(zone, 2025, 6, 10, 9, 0)
    assert send_time(morning, zone, shop=shop) == local(zone, 2025, 6, 10, 10, 0)
    evening = local(zone, 2025, 6, 10, 18, 30)
    assert send_time(evening, zone, shop=shop) == local(zone, 2025, 6, 11, 10, 0)
    noon = local(zone, 2025, 6, 10, 12, 0)
    assert send_time(noon, zone, shop=shop) == noon


def test_a_looser_shop_window_cannot_loosen_the_default() -> None:
    zone = "America/New_York"
    shop = ShopQuietHours(quiet_start=time(23, 0), quiet_end=time(7, 0))
    early = local(zone, 2025, 6, 10, 7, 30)
    assert send_time(early, zone, shop=shop) == local(zone, 2025, 6, 10, 8, 0)
    late = local(zone, 2025, 6, 10, 21, 30)
    assert send_time(late, zone, shop=shop) == local(zone, 2025, 6, 11, 8, 0)


def test_shop_and_state_windows_intersect() -> None:
    zone = "America/New_York"
    shop = ShopQuietHours(quiet_start=time(19, 0), quiet_end=time(8, 30))
    at = local(zone, 2025, 6, 10, 8, 45)  # after the shop's 08:30, before CT's 09:00
    assert send_time(at, zone, country="US", subdivision="US-CT", shop=shop) == local(
        zone, 2025, 6, 10, 9, 0
    )
    evening = local(zone, 2025, 6, 10, 19, 30)  # after the shop's 19:00, before CT's 20:00
    assert send_time(evening, zone, country="US", subdivision="US-CT", shop=shop) == local(
        zone, 2025, 6, 11, 9, 0
    )


def test_a_shop_window_that_never_overlaps_the_law_raises() -> None:
    shop = ShopQuietHours(quiet_start=time(7, 0), quiet_end=time(5, 0))  # only 05:00-07:00
    with pytest.raises(InvalidValue, match="no allowed sending time"):
        send_time(utc(2025, 6, 10, 12, 0), "UTC", shop=shop)


# --- a number spanning zones: the window must be open in all of them ------------------------

AUSTRALIAN_MOBILE = ("Australia/Perth", "Australia/Sydney")
# Open 10:00-15:00 only: five hours, as far apart as New York and London usually are.
TEN_TO_THREE = ShopQuietHours(quiet_start=time(15, 0), quiet_end=time(10, 0))


def send_time_in(at: datetime, zones: tuple[str, ...], shop: ShopQuietHours = DEFAULT_SHOP):
    return next_send_time_in_zones(at, zones, country=None, subdivision=None, shop=shop)


def test_a_sydney_summer_morning_waits_for_eight_in_perth() -> None:
    # 09:30 AEDT (UTC+11) is 06:30 in Perth (UTC+8): 08:00 there is 11:00 in Sydney.
    at = local("Australia/Sydney", 2026, 1, 14, 9, 30)
    assert send_time_in(at, AUSTRALIAN_MOBILE) == local("Australia/Sydney", 2026, 1, 14, 11, 0)
    assert send_time_in(at, AUSTRALIAN_MOBILE[::-1]) == local("Australia/Sydney", 2026, 1, 14, 11)


def test_the_common_window_ends_with_the_first_zone_to_close() -> None:
    evening = local("Australia/Sydney", 2026, 1, 14, 20, 30)  # 17:30 in Perth
    assert send_time_in(evening, AUSTRALIAN_MOBILE) is evening
    closed = local("Australia/Sydney", 2026, 1, 14, 21, 0)
    assert send_time_in(closed, AUSTRALIAN_MOBILE) == local("Australia/Sydney", 2026, 1, 15, 11)


def test_the_common_window_follows_sydney_out_of_summer_time() -> None:
    # Sydney leaves summer time on 5 April 2026: two hours ahead of Perth, not three.
    before = local("Australia/Sydney", 2026, 4, 4, 21, 30)
    assert send_time_in(before, AUSTRALIAN_MOBILE) == local("Australia/Sydney", 2026, 4, 5, 10)


def test_one_zone_or_none_is_next_send_time() -> None:
    at = utc(2026, 1, 14, 22, 30)
    for zones in (("Asia/Tokyo",), ("Asia/Tokyo", "Asia/Tokyo")):
        assert send_time_in(at, zones) == send_time(at, "Asia/Tokyo")
    assert send_time_in(at, ()) == send_time(at, None) == utc(2026, 1, 15, 8, 0)


def test_days_whose_windows_do_not_overlap_are_skipped_until_the_clocks_change() -> None:
    # 10:00-15:00 in New York (UTC-5) ends as it starts in London: no common minute, until
    # New York moves its clocks on 8 March 2026, three weeks before London does.
    monday = utc(2026, 3, 2, 12, 0)
    zones = ("America/New_York", "Europe/London")
    assert send_time_in(monday, zones, TEN_TO_THREE) == utc(2026, 3, 8, 14, 0)
    assert send_time_in(utc(2026, 3, 8, 15, 0), zones, TEN_TO_THREE) == utc(2026, 3, 9, 14, 0)


@pytest.mark.parametrize(
    ("zones", "at"),
    [
        # New York has left summer time (1 November 2026): no overlap again until March.
        (("America/New_York", "Europe/London"), utc(2026, 11, 2, 12, 0)),
        # Twelve hours apart: one zone's 10:00-15:00 is the other's night, every day.
        (("Europe/London", "Pacific/Auckland"), utc(2026, 6, 10, 12, 0)),
    ],
)
def test_zones_whose_windows_never_overlap_raise_instead_of_searching_forever(
    zones: tuple[str, ...], at: datetime
) -> None:
    with pytest.raises(InvalidValue, match="never overlap"):
        send_time_in(at, zones, TEN_TO_THREE)


def test_shop_settings_round_trip_and_defaults() -> None:
    assert ShopQuietHours.from_settings({}) == DEFAULT_SHOP
    assert ShopQuietHours.from_settings({"quiet_hours": None}) == DEFAULT_SHOP
    assert DEFAULT_SHOP.to_settings() == {"quiet_hours": {"start": "21:00", "end": "08:00"}}
    shop = ShopQuietHours.from_settings({"quiet_hours": {"start": "19:30", "end": "9:15"}})
    assert shop == ShopQuietHours(quiet_start=time(19, 30), quiet_end=time(9, 15))
    assert shop.allowed == Window(time(9, 15), time(19, 30))
    assert ShopQuietHours.from_settings(shop.to_settings()) == shop
    only_start = ShopQuietHours.from_settings({"quiet_hours": {"start": "20:00"}})
    assert only_start == ShopQuietHours(quiet_start=time(20, 0), quiet_end=time(8, 0))


@pytest.mark.parametrize(
    "raw",
    [
        "21:00-08:00",
        ["21:00", "08:00"],
        {"start": "25:00", "end": "08:00"},
        {"start": "21:60", "end": "08:00"},
        {"start": "9pm", "end": "08:00"},
        {"start": 21, "end": 8},
        {"start": "21:00:00", "end": "08:00"},
        {"start": "08:00", "end": "21:00"},  # does not span midnight
        {"start": "21:00", "end": "21:00"},  # empty
    ],
)
def test_malformed_shop_settings_raise(raw: object) -> None:
    with pytest.raises(InvalidValue):
        ShopQuietHours.from_settings({"quiet_hours": raw})


def test_invalid_shop_quiet_hours_explain_themselves() -> None:
    with pytest.raises(InvalidValue, match=r"quiet start \(08:00\).*quiet end \(21:00\)"):
        ShopQuietHours(quiet_start=time(8, 0), quiet_end=time(21, 0))
    with pytest.raises(InvalidValue, match="whole local minutes"):
        ShopQuietHours(quiet_start=time(21, 0, 30))


# --- subdivision from the phone number ------------------------------------------------------


@pytest.mark.parametrize(
    ("e164", "subdivision"),
    [
        ("+13055551234", "US-FL"),  # Miami
        ("+12125551234", "US-NY"),  # Manhattan: not a strict state
        ("+12145551234", "US-TX"),  # Dallas
        ("+18605551234", "US-CT"),
        ("+12015551234", "US-NJ"),
        ("+12065551234", "US-WA"),  # Seattle
        ("+14055551234", "US-OK"),  # Oklahoma City
        ("+14105551234", "US-MD"),  # Baltimore
        ("+16015551234", "US-MS"),  # Jackson
        ("13055551234", "US-FL"),  # Mitto's digits-only form
        ("+14165551234", None),  # Toronto
        ("+18005551234", None),  # toll-free
        ("+17875551234", None),  # Puerto Rico
        ("+442071234567", None),
        ("+1305555123", None),  # too short
        ("not a number", None),
        ("", None),
    ],
)
def test_subdivision_for(e164: str, subdivision: str | None) -> None:
    assert subdivision_for(e164) == subdivision


def test_area_code_table_covers_every_strict_state() -> None:
    states = set(US_AREA_CODES.values())
    assert {"FL", "OK", "MD", "WA", "MS", "NJ", "CT", "TX"} <= states
    assert all(len(npa) == 3 and npa.isdigit() for npa in US_AREA_CODES)
    assert len(states) == 51  # 50 states and DC


# --- properties -----------------------------------------------------------------------------

ZONES = [
    "UTC",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Europe/Paris",
    "Europe/Berlin",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Pacific/Chatham",  # UTC+12:45/+13:45
    "America/St_Johns",  # UTC-3:30
    "America/Havana",  # clocks change at midnight
    "America/Santiago",
]
JURISDICTIONS = [(None, None), ("US", "US-FL"), ("US", "US-CT"), ("US", "US-TX"), ("FR", None)]
SHOPS = [
    DEFAULT_SHOP,
    ShopQuietHours(quiet_start=time(18, 0), quiet_end=time(10, 0)),
    ShopQuietHours(quiet_start=time(23, 59), quiet_end=time(0, 0)),
    ShopQuietHours(quiet_start=time(20, 15), quiet_end=time(9, 45)),
]


@settings(max_examples=400, deadline=None)
@given(
    at=st.datetimes(
        min_value=datetime(2020, 1, 1),
        max_value=datetime(2035, 12, 31),
        timezones=st.just(UTC),
    ),
    zone=st.sampled_from(ZONES),
    jurisdiction=st.sampled_from(JURISDICTIONS),
    shop=st.sampled_from(SHOPS),
)
def test_send_time_properties(
    at: datetime, zone: str, jurisdiction: tuple[str | None, str | None], shop: ShopQuietHours
) -> None:
    country, subdivision = jurisdiction
    result = send_time(at, zone, country=country, subdivision=subdivision, shop=shop)
    # Never earlier, and no more than the search horizon later.
    assert at <= result < at + timedelta(days=SEARCH_DAYS)
    # Idempotent: a deferred message is sendable when it comes due.
    assert send_time(result, zone, country=country, subdivision=subdivision, shop=shop) == result
    # Inside the effective window on the recipient's wall clock.
    wall = result.astimezone(ZoneInfo(zone))
    legal = rule_for(country, subdivision).window_on(wall.date())
    window = legal.intersect(shop.allowed) if legal else None
    assert window is not None
    assert window.start <= wall.time().replace(tzinfo=None) < window.end
    if result != at:
        # A deferral lands on a whole local minute, and the minute before was not allowed.
        assert wall.second == 0
        assert wall.microsecond == 0
        before = max(at, result - timedelta(minutes=1))
        assert send_time(before, zone, country=country, subdivision=subdivision, shop=shop) == (
            result
        )


def _allowed_everywhere(at: datetime, zones: list[str], **rules: object) -> bool:
    return all(next_send_time(at, zone, **rules) == at for zone in zones)


@settings(max_examples=150, deadline=None)
@given(
    at=st.datetimes(
        min_value=datetime(2020, 1, 1),
        max_value=datetime(2035, 12, 31),
        timezones=st.just(UTC),
    ),
    zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3),
    jurisdiction=st.sampled_from(JURISDICTIONS),
    shop=st.sampled_from(SHOPS),
)
def test_send_time_in_zones_properties(
    at: datetime,
    zones: list[str],
    jurisdiction: tuple[str | None, str | None],
    shop: ShopQuietHours,
) -> None:
    rules = {"country": jurisdiction[0], "subdivision": jurisdiction[1], "shop": shop}
    # Every window starts on a quarter hour in UTC (all these offsets are whole quarters),
    # so a common window, if any, contains one of these instants: its start.
    quarter = at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)
    grid = [quarter + timedelta(minutes=15 * n) for n in range(1, 3 * 24 * 4)]
    try:
        result = next_send_time_in_zones(at, zones, **rules)
    except InvalidValue:
        # Nothing in common, at least within the three days checked.
        assert not any(_allowed_everywhere(t, zones, **rules) for t in grid)
        return
    assert at <= result < at + timedelta(days=SEARCH_DAYS)
    assert _allowed_everywhere(result, zones, **rules)
    # The earliest such instant: none before it, within the three days checked.
    assert not any(_allowed_everywhere(t, zones, **rules) for t in grid if t < result)
