"""GDPR domain rules and how a data subject is recognised in stored payloads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from application.gdpr.subjects import Identity
from application.gdpr.webhooks import subject_of
from domain.contacts import PhoneNumber
from domain.errors import InvalidValue
from domain.gdpr import GdprRequest, RequestKind, RequestSource, RequestStatus, Subject, due_date


class FakePhones:
    """US numbers only: ten digits, or eleven starting with 1."""

    def parse(self, raw: str, default_region: str | None) -> PhoneNumber:
        digits = "".join(c for c in raw if c.isdigit())
        if len(digits) == 10:
            digits = "1" + digits
        if len(digits) != 11 or not digits.startswith("1"):
            raise InvalidValue("not a phone number")
        return PhoneNumber(e164="+" + digits, region="US", timezones=(), mobile=True)


PHONES = FakePhones()
ADA = Identity.of(
    Subject(shopify_customer_id=501, phone="(415) 555-0101", email=" Ada@Example.com "),
    PHONES,
    "US",
)


def test_a_request_is_due_thirty_days_after_receipt():
    received = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    assert due_date(received) == datetime(2026, 12, 28, 9, 30, tzinfo=UTC)
    with pytest.raises(InvalidValue):
        due_date(datetime(2026, 11, 28))  # naive on purpose


def test_fulfilling_clears_an_earlier_attempts_error_and_holding_fails_it():
    request = GdprRequest.receive(
        id=uuid.uuid4(),
        shop_id=uuid.uuid4(),
        kind=RequestKind.DATA_REQUEST,
        source=RequestSource.SHOPIFY,
        subject=Subject(email="ada@example.com"),
        received_at=datetime.now(UTC),
    )
    request.attempt_failed("RuntimeError")
    assert (request.status, request.error) == (RequestStatus.PENDING, "RuntimeError")
    request.fulfil(request.received_at + timedelta(hours=1))
    assert (request.status, request.error) == (RequestStatus.FULFILLED, None)
    request.hold("held: reinstalled")
    assert request.status is RequestStatus.FAILED


def test_identity_normalizes_what_the_requester_gave():
    assert ADA.phones == {"+14155550101"} and ADA.emails == {"ada@example.com"}
    assert ADA.customer_ids == {501}
    assert Identity.of(Subject(phone="12", email="nope"), PHONES, "US") == Identity(
        frozenset(), frozenset(), frozenset(), frozenset()
    )


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("customers/update", {"id": 501, "phone": None}),
        ("customers_marketing_consent/update", {"id": "501"}),
        ("checkouts/create", {"token": "t", "customer": {"id": 501}}),
        ("orders/create", {"id": 9, "shipping_address": {"phone": "415-555-0101"}}),
        ("orders/create", {"id": 9, "contact_email": "ADA@example.com"}),
        ("fulfillments/create", {"destination": {"phone": "+14155550101"}}),
        ("orders/create", {"id": 9, "note": "call her on +14155550101"}),
    ],
)
def test_a_payload_that_names_the_person_is_recognised(topic, payload):
    assert ADA.mentioned_in(topic, payload, PHONES, "US")


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("orders/create", {"id": 501, "customer": {"id": 502}}),  # an order's id is no customer
        ("checkouts/create", {"line_items": [{"id": 501}], "phone": "+14155550102"}),
        ("customers/update", {"id": 502, "email": "bob@example.com"}),
        ("shop/update", {"id": 501}),
    ],
)
def test_a_payload_about_someone_else_is_not(topic, payload):
    assert not ADA.mentioned_in(topic, payload, PHONES, "US")


def test_the_listed_orders_are_recognised_in_order_payloads():
    orders = Identity.of(Subject(orders=(7001,)), PHONES, "US")
    assert orders.mentioned_in("orders/paid", {"id": 7001}, PHONES, "US")
    assert orders.mentioned_in("fulfillments/create", {"order_id": 7001}, PHONES, "US")
    assert not orders.mentioned_in("customers/update", {"id": 7001}, PHONES, "US")


def test_subject_is_read_from_a_compliance_payload():
    payload = {
        "customer": {"id": 501, "email": "ada@example.com", "phone": ""},
        "orders_to_redact": [7001, "7002", None],
    }
    assert subject_of(payload, "orders_to_redact") == Subject(
        shopify_customer_id=501, phone=None, email="ada@example.com", orders=(7001, 7002)
    )
