"""Quiet hours and caps: when and how often a marketing text may reach a recipient
(contract sms.md §4, §5).

Marketing texts go out only inside the recipient's local sending window; outside it they
are deferred to the next allowed minute, never dropped. The windows are data (`RULES`): a
default for everyone, stricter ones for some US states, and France's, which also rules out
Sundays and public holidays. A shop may narrow the window (`ShopQuietHours`) but never
widen it: the effective window of a day is the intersection of both, and a day whose
intersection is empty is skipped.

Windows are local wall-clock times, so the computation goes through the recipient's time
zone on every candidate day: "08:00 local" is 12:00 UTC one morning and 13:00 UTC the next
when the clocks change overnight. A recipient whose number spans zones (an Australian
mobile may be in any of eight) may be in any of them, so a text waits until the window is
open in all of them (`next_send_time_in_zones`). Keyword replies and (where the shop allows it)
transactional messages bypass quiet hours; that choice is the caller's, not this module's.

Some jurisdictions also limit how many marketing texts a recipient may get (`MARKETING_CAPS`),
whatever the shop's own cap; they are found the same way as the windows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import cache
from types import MappingProxyType
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import InvalidValue
from domain.us_area_codes import US_AREA_CODES

# How far ahead to look for a window. The longest legitimate wait is a couple of days
# (a French Saturday night before a Sunday and a holiday Monday); two weeks of nothing means
# the shop's window and the recipient's rules never overlap (or, for a number spanning
# zones, that the windows of its zones never do).
SEARCH_DAYS = 14


@dataclass(frozen=True, slots=True)
class Window:
    """Allowed local sending hours of one day: from `start` (inclusive) to `end` (exclusive)."""

    start: time
    end: time

    def intersect(self, other: Window) -> Window | None:
        """The hours both windows allow (latest start, earliest end); None when none."""
        start, end = max(self.start, other.start), min(self.end, other.end)
        return Window(start, end) if start < end else None


@dataclass(frozen=True, slots=True)
class SendingRule:
    """A jurisdiction's windows: one per weekday (Monday first; None = no marketing that
    day) and, optionally, the public holidays of a year, on which nothing may be sent."""

    weekdays: tuple[Window | None, ...]
    holidays: Callable[[int], frozenset[date]] | None = None

    def __post_init__(self) -> None:
        if len(self.weekdays) != 7:
            raise InvalidValue("a sending rule needs one window per weekday (Monday first)")

    @classmethod
    def every_day(cls, start: time, end: time) -> SendingRule:
        return cls(weekdays=(Window(start, end),) * 7)

    def window_on(self, day: date) -> Window | None:
        if self.holidays is not None and day in self.holidays(day.year):
            return None
        return self.weekdays[day.weekday()]


def easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday by the anonymous (Meeus/Jones/Butcher) algorithm."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l = (32 + 2 * e + 2 * i - h - k) % 7  # noqa: E741 - the algorithm's own name
    m = (a + 11 * h + 22 * l) // 451
    month, day = divmod(h + l - 7 * m + 114, 31)
    return date(year, month, day + 1)


@cache
def french_public_holidays(year: int) -> frozenset[date]:
    """The eleven French public holidays (jours fériés) of `year`, metropolitan France.

    Alsace-Moselle's two extra days (Good Friday, 26 December) are not included: the
    recipient's département is not known from a phone number.
    """
    easter = easter_sunday(year)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
    movable = [easter + timedelta(days=n) for n in (1, 39, 50)]  # Monday, Ascension, Whit Mon
    return frozenset([date(year, month, day) for month, day in fixed] + movable)


_EIGHT_TO_EIGHT = SendingRule.every_day(time(8), time(20))

DEFAULT_RULE = SendingRule.every_day(time(8), time(21))

# Keyed by ISO 3166-2 subdivision ("US-FL") or ISO 3166-1 country ("FR"); a subdivision's
# rule takes precedence over its country's, and anything unknown gets `DEFAULT_RULE`.
RULES: Mapping[str, SendingRule] = MappingProxyType(
    {
        **dict.fromkeys(("US-FL", "US-OK", "US-MD", "US-WA", "US-MS", "US-NJ"), _EIGHT_TO_EIGHT),
        "US-CT": SendingRule.every_day(time(9), time(20)),
        "US-TX": SendingRule(
            weekdays=(Window(time(9), time(21)),) * 6 + (Window(time(12), time(21)),)
        ),
        "FR": SendingRule(
            weekdays=(Window(time(8), time(22)),) * 6 + (None,),
            holidays=french_public_holidays,
        ),
    }
)


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most `count` marketing texts to one recipient within any `window`."""

    count: int
    window: timedelta


# Keyed like `RULES`; a jurisdiction that is absent sets no cap of its own.
MARKETING_CAPS: Mapping[str, FrequencyCap] = MappingProxyType(
    dict.fromkeys(("US-FL", "US-OK", "US-MD"), FrequencyCap(3, timedelta(hours=24)))
)

_T = TypeVar("_T")


def _jurisdiction_entry(
    table: Mapping[str, _T], country: str | None, subdivision: str | None
) -> _T | None:
    """The subdivision's entry, else its country's. `subdivision` may be "US-FL" or just
    "FL" (then `country` supplies the prefix); codes are matched case-insensitively."""
    country = country.strip().upper() if country else None
    if subdivision:
        key = subdivision.strip().upper()
        if "-" not in key and country:
            key = f"{country}-{key}"
        if key in table:
            return table[key]
    return table.get(country) if country else None


def rule_for(country: str | None, subdivision: str | None) -> SendingRule:
    """The quiet-hours rule for a recipient's jurisdiction (see `_jurisdiction_entry`)."""
    rule = _jurisdiction_entry(RULES, country, subdivision)
    return DEFAULT_RULE if rule is None else rule


def cap_for(country: str | None, subdivision: str | None) -> FrequencyCap | None:
    """The marketing cap of a recipient's jurisdiction, if it has one."""
    return _jurisdiction_entry(MARKETING_CAPS, country, subdivision)


_HH_MM = re.compile(r"(\d{1,2}):(\d{2})")


def _parse_hh_mm(value: object, field: str) -> time:
    match = _HH_MM.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise InvalidValue(f"quiet hours {field} must be a time like 21:00, got {value!r}")
    return time(int(match[1]), int(match[2]))


@dataclass(frozen=True, slots=True)
class ShopQuietHours:
    """A shop's own quiet hours: no marketing from `quiet_start` until `quiet_end` (local
    time of the recipient, spanning midnight). They can only make the legal window
    stricter, never looser: see `next_send_time`."""

    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)

    def __post_init__(self) -> None:
        for value in (self.quiet_start, self.quiet_end):
            if value.tzinfo is not None or value.second or value.microsecond:
                raise InvalidValue("quiet hours are whole local minutes without a time zone")
        if not self.quiet_end < self.quiet_start:
            raise InvalidValue(
                "quiet hours must span midnight: the quiet start "
                f"({self.quiet_start:%H:%M}) must be later in the day than the quiet end "
                f"({self.quiet_end:%H:%M})"
            )

    @property
    def allowed(self) -> Window:
        """The hours the shop allows marketing: from the end of its quiet hours to their start."""
        return Window(self.quiet_end, self.quiet_start)

    @classmethod
    def from_settings(cls, settings: Mapping[str, object]) -> ShopQuietHours:
        """Read `settings["quiet_hours"]` = {"start": "21:00", "end": "08:00"}; absent
        (or an absent key) means the default, anything malformed raises InvalidValue."""
        raw = settings.get("quiet_hours")
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise InvalidValue('quiet hours must look like {"start": "21:00", "end": "08:00"}')
        default = cls()
        start, end = raw.get("start"), raw.get("end")
        return cls(
            quiet_start=default.quiet_start if start is None else _parse_hh_mm(start, "start"),
            quiet_end=default.quiet_end if end is None else _parse_hh_mm(end, "end"),
        )

    def to_settings(self) -> dict[str, object]:
        """The settings fragment `from_settings` reads back."""
        return {
            "quiet_hours": {"start": f"{self.quiet_start:%H:%M}", "end": f"{self.quiet_end:%H:%M}"}
        }


def zone_or_utc(name: str | None) -> tzinfo:
    """The IANA zone `name`, or UTC when it is missing or unknown: a bad stored time zone
    must defer a message by at most a few hours, not crash the sending pipeline."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _instant(day: date, wall: time, zone: tzinfo, *, latest: bool) -> datetime:
    """The UTC instant of a local wall-clock time. Around a clock change the two `fold`
    readings differ (a skipped or a repeated hour); `latest` picks the later one (for a
    window's start), otherwise the earlier (for its end), so that every instant inside the
    window reads as inside it on the recipient's clock."""
    readings = [
        datetime.combine(day, wall, tzinfo=zone).replace(fold=fold).astimezone(UTC)
        for fold in (0, 1)
    ]
    return max(readings) if latest else min(readings)


def next_send_time(
    at: datetime,
    timezone: str | None,
    *,
    country: str | None,
    subdivision: str | None,
    shop: ShopQuietHours,
) -> datetime:
    """`at` itself when a marketing text may reach the recipient then, otherwise the start
    (UTC, a whole local minute) of the next allowed window in the recipient's `timezone`.

    Raises InvalidValue for a naive `at`, or when no window opens within `SEARCH_DAYS`
    (only possible when the shop's hours never overlap the recipient's legal window).
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidValue("the send time must be timezone-aware")
    zone = zone_or_utc(timezone)
    rule = rule_for(country, subdivision)
    allowed = shop.allowed
    first_day = at.astimezone(zone).date() - timedelta(days=1)
    for offset in range(SEARCH_DAYS + 2):
        day = first_day + timedelta(days=offset)
        legal = rule.window_on(day)
        window = legal.intersect(allowed) if legal is not None else None
        if window is None:
            continue
        start = _instant(day, window.start, zone, latest=True)
        end = _instant(day, window.end, zone, latest=False)
        if at < start < end:
            return start
        if start <= at < end:
            return at
    raise InvalidValue(
        f"no allowed sending time within {SEARCH_DAYS} days: the shop's quiet hours "
        f"({shop.quiet_start:%H:%M}-{shop.quiet_end:%H:%M}) leave no overlap with the "
        "recipient's legal sending window"
    )


def next_send_time_in_zones(
    at: datetime,
    timezones: Sequence[str | None],
    *,
    country: str | None,
    subdivision: str | None,
    shop: ShopQuietHours,
) -> datetime:
    """`next_send_time` for a recipient who may be in any of `timezones`: the earliest
    instant from `at` on at which the window is open in every one of them (an empty
    `timezones` means UTC, as a missing zone does for `next_send_time`).

    No zone allows an instant before its own next allowed one, so the latest of those is a
    lower bound of the common instant; asking again from there climbs to it, and stops
    where every zone allows the candidate. Each step that moves lands on the start of some
    zone's window, of which the search horizon holds at most `SEARCH_DAYS` + 2 per zone, so
    the climb is bounded; a day whose windows do not overlap is climbed past like any gap.

    Raises InvalidValue as `next_send_time` does, and when the zones' windows leave no
    common instant within `SEARCH_DAYS` (zones far apart under a narrow shop window).
    """
    zones = tuple(dict.fromkeys(timezones)) or (None,)
    horizon = at + timedelta(days=SEARCH_DAYS)
    candidate = at
    for _ in range(len(zones) * (SEARCH_DAYS + 2) + 1):
        latest = max(
            next_send_time(candidate, zone, country=country, subdivision=subdivision, shop=shop)
            for zone in zones
        )
        if latest == candidate:
            return candidate
        if latest >= horizon:
            break
        candidate = latest
    raise InvalidValue(
        f"no allowed sending time within {SEARCH_DAYS} days: the recipient may be in any of "
        f"{', '.join(zone or 'UTC' for zone in zones)}, and their sending windows never overlap"
    )


def subdivision_for(e164: str) -> str | None:
    """The US state of a +1 number's geographic area code as "US-XX", else None.

    Only an approximation (people keep their number when they move), but the best one
    without an address. Canadian, Caribbean, toll-free and non-+1 numbers give None.
    """
    digits = e164.strip().removeprefix("+")
    if len(digits) != 11 or not digits.isdigit() or not digits.startswith("1"):
        return None
    state = US_AREA_CODES.get(digits[1:4])
    return f"US-{state}" if state else None
