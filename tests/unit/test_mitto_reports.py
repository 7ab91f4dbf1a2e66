"""Tolerant parsing of Mitto delivery reports and inbound messages (contract sms.md §1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infrastructure.mitto.reports import (
    DeliveryReport,
    InboundSms,
    parse_delivery_report,
    parse_inbound,
    parse_timestamp,
)

AT = datetime(2024, 5, 29, 16, 26, 40, tzinfo=UTC)  # unix 1717000000


def test_plugin_json_report():
    report = parse_delivery_report(
        {
            "msgid": "6b1c0e4e-1",
            "status": "Delivered",
            "reference": "018f-ours",
            "errorCode": 0,
            "timestamp": "2024-05-29T16:26:40Z",
        }
    )
    assert report == DeliveryReport("6b1c0e4e-1", "018f-ours", "Delivered", "0", AT)


def test_form_report_with_mixed_case_keys_and_unix_seconds():
    report = parse_delivery_report(
        {"MessageId": "abc", "DeliveryStatus": "UNDELIV", "ERR": "34", "DoneDate": "1717000000"}
    )
    assert report.provider_id == "abc"
    assert report.status_word == "UNDELIV"
    assert report.error_code == "34"
    assert report.reference is None
    assert report.reported_at == AT


def test_query_string_lists_snake_case_and_client_reference():
    report = parse_delivery_report(
        {
            "message_id": ["x1", "x2"],
            "delivery_status": ["DELIVRD"],
            "client_reference": ["r-9"],
            "error_code": [""],
            "done_date": ["2024-05-29 18:26:40+02:00"],
        }
    )
    assert report == DeliveryReport("x1", "r-9", "DELIVRD", None, AT)


def test_reference_alone_is_enough_and_id_and_stat_are_read():
    assert parse_delivery_report({"clientReference": "r-1"}).reference == "r-1"
    report = parse_delivery_report({"id": 42, "stat": "EXPIRED", "date": 1717000000})
    assert (report.provider_id, report.status_word, report.reported_at) == ("42", "EXPIRED", AT)


def test_first_readable_timestamp_wins_and_unreadable_is_none():
    report = parse_delivery_report(
        {"msgid": "a", "timestamp": "yesterday", "deliveredAt": "2024-05-29T16:26:40"}
    )
    assert report.reported_at == AT  # naive ISO is UTC
    assert parse_delivery_report({"msgid": "a", "timestamp": "soon"}).reported_at is None


def test_report_without_id_or_reference_is_refused_readably():
    with pytest.raises(ValueError, match="msgid"):
        parse_delivery_report({"status": "Delivered", "msgid": "  "})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1717000000, AT),
        (1717000000.0, AT),
        ("1717000000", AT),
        (1717000000000, AT),  # milliseconds
        ("2024-05-29T16:26:40.000Z", AT),
        ("2024-05-29T12:26:40-04:00", AT),
        (["2024-05-29T16:26:40Z"], AT),
        ("", None),
        ("not a date", None),
        ("nan", None),
        ("0001-01-01T00:00:00+01:00", None),  # before the first UTC instant
        (-5, None),
        (True, None),
        (None, None),
    ],
)
def test_timestamps(value, expected):
    assert parse_timestamp(value) == expected


def test_zoned_timestamps_come_back_in_utc():
    parsed = parse_timestamp("2024-05-29T18:26:40+02:00")
    assert parsed == AT and parsed.utcoffset() == timedelta(0)
    assert parsed.tzinfo == UTC


def test_inbound_json_with_digits_gets_plus():
    inbound = parse_inbound(
        {
            "from": "4915112345678",
            "to": "4930123456",
            "text": "STOP",
            "messageId": "mo-1",
            "timestamp": "2024-05-29T16:26:40Z",
        }
    )
    assert inbound == InboundSms("mo-1", "+4915112345678", "+4930123456", "STOP", AT)


def test_nul_characters_are_dropped_from_every_field():
    inbound = parse_inbound(
        {"from": "4915112\x00345678", "to": "4930123456\x00", "text": "STOP\x00"}
    )
    assert (inbound.sender, inbound.receiver, inbound.text) == (
        "+4915112345678",
        "+4930123456",
        "STOP",
    )
    assert parse_delivery_report({"msgid": "ab\x00c"}).provider_id == "abc"


def test_an_inbound_id_longer_than_its_column_is_refused_not_cut():
    fields = {"from": "4915112345678", "to": "4930123456", "text": "hi"}
    with pytest.raises(ValueError, match="longer than 100"):
        parse_inbound({**fields, "id": "i" * 101})
    assert parse_inbound({**fields, "id": "i" * 100}).provider_id == "i" * 100


def test_inbound_form_with_other_names_and_mixed_case():
    inbound = parse_inbound(
        {"MSISDN": "+33612345678", "Destination": "33700000000", "Message": "Oui", "Date": "x"}
    )
    assert inbound.sender == "+33612345678"
    assert inbound.receiver == "+33700000000"
    assert inbound.text == "Oui"
    assert inbound.provider_id is None and inbound.received_at is None


@pytest.mark.parametrize(
    ("sender_key", "receiver_key", "text_key"),
    [
        ("sender", "receiver", "body"),
        ("source", "recipient", "content"),
        ("from", "number", "text"),
    ],
)
def test_inbound_aliases(sender_key, receiver_key, text_key):
    inbound = parse_inbound(
        {sender_key: "12025550123", receiver_key: "Blossom", text_key: "hi", "msgid": 7}
    )
    assert (inbound.sender, inbound.receiver, inbound.text) == ("+12025550123", "Blossom", "hi")
    assert inbound.provider_id == "7"


def test_inbound_empty_text_is_a_text_but_missing_text_is_not():
    assert parse_inbound({"from": "4915112345678", "to": "4930123456", "text": ""}).text == ""
    with pytest.raises(ValueError, match="text"):
        parse_inbound({"from": "4915112345678", "to": "4930123456"})


@pytest.mark.parametrize(
    "fields",
    [
        {"to": "4930123456", "text": "x"},
        {"from": "4915112345678", "text": "x"},
        {"from": " ", "to": "4930123456", "text": "x"},
    ],
)
def test_inbound_needs_sender_and_receiver(fields):
    with pytest.raises(ValueError, match="lacks"):
        parse_inbound(fields)


def test_inbound_unix_timestamp():
    inbound = parse_inbound(
        {"from": "4915112345678", "to": "4930123456", "text": "Y", "timestamp": 1717000000}
    )
    assert inbound.received_at == AT
