"""The time zones of countries, from the tz database's `zone.tab` as the tzdata package
ships it (the data `zoneinfo` falls back to, so its zone names load everywhere)."""

from __future__ import annotations

from importlib import resources


class ZoneTab:
    """`CountryZones` from zone.tab, one row per zone with its country's code first.

    Only a country with a single row places an address. For the others a province would
    have to, and no data we hold maps provinces to zones (zone.tab describes them in
    prose), so such an address says nothing and the phone number decides.
    """

    def __init__(self) -> None:
        rows: dict[str, list[str]] = {}
        for line in _zone_tab().splitlines():
            if line and not line.startswith("#"):
                country, _coordinates, zone, *_comments = line.split("\t")
                rows.setdefault(country, []).append(zone)
        self._zones = {country: zones[0] for country, zones in rows.items() if len(zones) == 1}

    def zone_of(self, country: str) -> str | None:
        return self._zones.get(country.strip().upper())


def _zone_tab() -> str:
    return resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text(encoding="utf-8")
