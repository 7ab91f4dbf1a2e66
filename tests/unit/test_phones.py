"""Phone numbers to E.164 and their country, through libphonenumber."""

from __future__ import annotations

import pytest

from domain.errors import InvalidValue
from infrastructure.phones import LibPhoneNumbers


def test_a_national_number_gets_the_default_region_and_its_country():
    phone = LibPhoneNumbers().parse("(415) 555-0132", "us")
    assert (phone.e164, phone.region) == ("+14155550132", "US")


@pytest.mark.parametrize("raw", ["+870773111632", "+80012345678"])
def test_numbers_of_no_country_have_no_region(raw):
    # Inmarsat and international freephone: libphonenumber calls their region "001", which
    # is no country and fits no two-letter column.
    phone = LibPhoneNumbers().parse(raw, None)
    assert phone.e164 == raw
    assert phone.region is None


def test_an_invalid_number_is_refused():
    with pytest.raises(InvalidValue):
        LibPhoneNumbers().parse("+1 555", None)


def test_a_number_keeps_every_zone_it_may_be_used_in():
    # Australian mobiles are not tied to a state: quiet hours must hold in all their zones.
    mobile = LibPhoneNumbers().parse("+61412345678", None)
    assert {"Australia/Perth", "Australia/Sydney"} <= set(mobile.timezones)
    assert LibPhoneNumbers().parse("+4915112345678", None).timezones == ("Europe/Berlin",)
    assert LibPhoneNumbers().parse("+870773111632", None).timezones == ()
