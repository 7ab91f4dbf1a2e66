import io
import json
import logging
import uuid

import pytest
from opentelemetry.sdk.trace import TracerProvider

from infrastructure.telemetry.logging import (
    JsonFormatter,
    configure_logging,
    redact,
    request_id_var,
)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"
SHOPIFY_TOKEN = "shpat_0123456789abcdef0123456789abcdef"
BEARER_SECRET = "eyJhbGciOiJub25lIn0.eyJzaG9wIjoiYmxvc3NvbSJ9.c2lnbmF0dXJlLXZhbHVl"
EMAIL = "jane.doe+sms@example.com"
UUID_TEXT = "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b"
TIMESTAMP = "2026-11-27T22:52:47.123456+00:00"

RAW_SECRETS = [
    "+14155550132",
    "4155550132",
    "+44 20 7946 0958",
    "7946 0958",
    EMAIL,
    SHOPIFY_TOKEN,
    BEARER_SECRET,
    JWT,
    "hunter2",
    "abc123",
]


class Capture:
    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.logger = logging.getLogger(f"test.redaction.{uuid.uuid4().hex}")
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(JsonFormatter())
        self.logger.addHandler(handler)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def capture():
    return Capture()


@pytest.fixture
def request_id():
    token = request_id_var.set("req-7f3a9c")
    yield "req-7f3a9c"
    request_id_var.reset(token)


def _log_everything(logger: logging.Logger) -> None:
    logger.info("sending to %s and %s for %s", "+14155550132", "+44 20 7946 0958", EMAIL)
    logger.info("shop token %s", SHOPIFY_TOKEN)
    logger.info("outgoing headers: Authorization: Bearer %s", BEARER_SECRET)
    logger.warning("session %s rejected; login password=hunter2", JWT)
    logger.info(
        "webhook received",
        extra={
            "credentials": {"api_key": "abc123"},
            "customer": {"phone": "(415) 555-0132", "emails": [EMAIL]},
            "headers": {"Authorization": f"Bearer {BEARER_SECRET}"},
            "note": "call +14155550132",
        },
    )
    try:
        raise RuntimeError("SMS to +14155550132 failed")
    except RuntimeError:
        logger.exception("send failed")


def test_no_pii_or_secret_appears_in_any_output_line(capture, request_id):
    _log_everything(capture.logger)

    for raw in RAW_SECRETS:
        assert raw not in capture.text
    assert "[phone]" in capture.text
    assert "[email]" in capture.text
    assert "[token]" in capture.text
    assert "[redacted]" in capture.text


def test_every_line_is_a_json_object_with_core_fields(capture, request_id):
    _log_everything(capture.logger)

    records = capture.records()

    assert len(records) == 6
    for record in records:
        assert {"ts", "level", "logger", "msg"} <= record.keys()
        assert record["logger"] == capture.logger.name
        assert record["request_id"] == request_id
        assert record["ts"].endswith("+00:00")


def test_extra_values_under_secret_keys_are_replaced_whole(capture):
    capture.logger.info("x", extra={"api_key": "abc123", "settings": {"client_secret": 42}})

    [record] = capture.records()

    assert record["api_key"] == "[redacted]"
    assert record["settings"] == {"client_secret": "[redacted]"}


def test_extra_values_are_redacted_recursively_and_made_json_safe(capture):
    class Customer:
        def __repr__(self) -> str:
            return f"Customer(email={EMAIL})"

    capture.logger.info(
        "x",
        extra={"customer": Customer(), "phones": ("+14155550132", 3), "ratio": float("nan")},
    )

    [record] = capture.records()

    assert record["customer"] == "Customer(email=[email])"
    assert record["phones"] == ["[phone]", 3]
    assert record["ratio"] == "nan"


def test_exception_text_is_included_and_redacted(capture):
    try:
        raise RuntimeError("SMS to +14155550132 failed")
    except RuntimeError:
        capture.logger.exception("send failed")

    [record] = capture.records()

    assert "RuntimeError: SMS to [phone] failed" in record["exc"]
    assert "+14155550132" not in record["exc"]


def test_identifiers_timestamps_and_small_numbers_survive(capture):
    capture.logger.info(
        "job %s for shop %s at %s took %s ms, status %s, %s rows",
        1234567,
        UUID_TEXT,
        TIMESTAMP,
        12.5,
        200,
        42,
        extra={"shop_id": UUID_TEXT, "at": TIMESTAMP, "job_id": 1234567, "attempt": 3},
    )

    [record] = capture.records()

    assert record["msg"] == (
        f"job 1234567 for shop {UUID_TEXT} at {TIMESTAMP} took 12.5 ms, status 200, 42 rows"
    )
    assert record["shop_id"] == UUID_TEXT
    assert record["at"] == TIMESTAMP
    assert record["job_id"] == 1234567
    assert record["attempt"] == 3


def test_request_id_is_omitted_outside_a_request(capture):
    capture.logger.info("x")

    [record] = capture.records()

    assert "request_id" not in record


def test_trace_and_span_ids_come_from_the_current_span(capture):
    tracer = TracerProvider().get_tracer(__name__)

    with tracer.start_as_current_span("send") as span:
        capture.logger.info("inside")
    capture.logger.info("outside")

    inside, outside = capture.records()
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("to +14155550132.", "to [phone]."),
        ("to +44 20 7946 0958", "to [phone]"),
        ("to (415) 555-0132", "to [phone]"),
        ("to 415-555-0132", "to [phone]"),
        ("to 415.555.0132", "to [phone]"),
        ("from jane@example.co.uk", "from [email]"),
        ("GET /cb?to=%2B14155550132&id=7", "GET /cb?to=[phone]&id=7"),
        # A URL carried in another URL's query string: its "=" is "%3D", ending in a letter.
        ("next=%2Fsignup%3Fphone%3D%2B14155550132", "next=%2Fsignup%3Fphone%3D[phone]"),
        ("body email=jane.doe%40example.com&x=1", "body email=[email]&x=1"),
        (f"token {SHOPIFY_TOKEN}", "token [token]"),
        ("shpss_abc123DEF", "[token]"),
        (f"Authorization: Bearer {BEARER_SECRET}", "Authorization: [redacted]"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [redacted]"),
        ("sent with bearer abc.def-123", "sent with bearer [redacted]"),
        (f"jwt {JWT} end", "jwt [token] end"),
        ("password=hunter2 next=1", "password=[redacted] next=1"),
        ("refresh_token: r-123", "refresh_token: [redacted]"),
        ('{"access_token": "a b", "n": 5}', '{"access_token": "[redacted]", "n": 5}'),
        ("{'api_key': 'abc123'}", "{'api_key': '[redacted]'}"),
        ("X-Api-Key: abc123", "X-Api-Key: [redacted]"),
        ("postgres://app:s3cr3t@db:5432/blossom", "postgres://app:[redacted]@db:5432/blossom"),
    ],
)
def test_redact_replaces_sensitive_values(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        UUID_TEXT,
        "01234567-8901-2345-6789-012345678901",
        TIMESTAMP,
        "2026-11-27",
        "took 12.5 ms",
        "HTTP 200 after 3 attempts, job 1234567",
        "client 192.168.100.200",
        "token_count=5",
        "gid://shopify/Customer/7712345678901",
    ],
)
def test_redact_leaves_non_sensitive_text_alone(text):
    assert redact(text) == text


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quieted = {name: logging.getLogger(name).level for name in ("asyncio", "httpx")}
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, quieted_level in quieted.items():
        logging.getLogger(name).setLevel(quieted_level)


def test_configure_logging_twice_installs_one_json_handler(restore_root_logger):
    configure_logging("debug")
    configure_logging("warning")

    ours = [h for h in restore_root_logger.handlers if isinstance(h.formatter, JsonFormatter)]
    assert len(ours) == 1
    assert restore_root_logger.level == logging.WARNING
    assert logging.getLogger("httpx").level == logging.WARNING


@pytest.mark.parametrize(
    "run", ["1" * 20_000, "a." * 10_000, "12-" * 7_000, "x@" + "a." * 10_000, "a%40" * 5_000]
)
def test_redact_scans_long_unbroken_runs_without_backtracking_blowup(run):
    # Quadratic backtracking here would take seconds; a linear scan takes milliseconds.
    assert redact(run) == run
