"""Phone numbers to E.164 with `phonenumbers` (Google's libphonenumber metadata)."""

from __future__ import annotations

import phonenumbers
from phonenumbers import timezone as phone_timezones

from domain.contacts import PhoneNumber
from domain.errors import InvalidValue

# libphonenumber answers this for numbers it cannot place in any zone.
_UNKNOWN_ZONE = "Etc/Unknown"


class LibPhoneNumbers:
    def parse(self, raw: str, default_region: str | None) -> PhoneNumber:
        text = (raw or "").strip()
        if not text:
            raise InvalidValue("phone number is empty")
        try:
            number = phonenumbers.parse(text, (default_region or "").upper() or None)
        except phonenumbers.NumberParseException as exc:
            raise InvalidValue(f"not a phone number ({_reason(exc)})") from None
        if not phonenumbers.is_valid_number(number):
            raise InvalidValue("not a valid phone number for its country")
        zones = phone_timezones.time_zones_for_number(number)
        return PhoneNumber(
            e164=phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
            region=_country(number),
            timezones=tuple(zone for zone in zones if zone != _UNKNOWN_ZONE),
            mobile=phonenumbers.number_type(number)
            in (
                phonenumbers.PhoneNumberType.MOBILE,
                phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
            ),
        )


def _country(number: phonenumbers.PhoneNumber) -> str | None:
    """The ISO country, or None for numbers of no country: libphonenumber answers "001" for
    global services (+800 freephone, +870 Inmarsat, +882/+883 international networks) and
    "ZZ" when it cannot tell."""
    region = phonenumbers.region_code_for_number(number)
    return region if region and len(region) == 2 and region.isalpha() and region != "ZZ" else None


def _reason(exc: phonenumbers.NumberParseException) -> str:
    return {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "no digits",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }.get(exc.error_type, "unreadable")
