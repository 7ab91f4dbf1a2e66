"""The Mitto adapter and the simulator against a real FakeMitto on loopback (no database).

The property that matters most: a message is never accepted twice, whatever fails.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import REGISTRY

from application.errors import SmsFateUnknown, SmsRejected, SmsUnauthorized, SmsUnavailable
from application.ports import OutboundSms, SmsReceipt
from infrastructure.mitto import gateway as gateway_module
from infrastructure.mitto.fake_server import FakeMitto
from infrastructure.mitto.gateway import MittoSmsGateway
from infrastructure.mitto.simulator import SimulatorSmsGateway

KEY = "mitto-test-key"
NUMBER = "+4915112345678"
TEXT = "Blossom: 20% off today. Reply STOP to opt out"
SEND = "POST /sms"
LOOKUP = "GET /sms"
CURLY = "\u2019"  # a right single quote: not GSM-7


class SleepRecorder:
    """Stands in for asyncio.sleep: records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture(scope="module")
async def mitto():
    async with FakeMitto(KEY) as server:
        yield server


@pytest.fixture
def fake(mitto):
    mitto.reset()
    return mitto


@pytest.fixture
def sleeps():
    return SleepRecorder()


def make_gateway(base_url: str, sleeps: SleepRecorder, **options) -> MittoSmsGateway:
    # Answers time out fast, so the timeout tests are quick; connecting to the loopback fake
    # gets longer, since a busy machine can hold up a connect past 0.3 s.
    timeout = httpx.Timeout(0.3, connect=5.0)
    settings = {"timeout": timeout, "max_attempts": 3, "base_delay": 0.001, "max_delay": 0.01}
    return MittoSmsGateway(
        options.pop("api_key", KEY), base_url, sleep=sleeps, **settings | options
    )


@pytest.fixture
async def gateway(fake, sleeps):
    gateway = make_gateway(fake.base_url, sleeps)
    yield gateway
    await gateway.aclose()


def outbound(*, to: str = NUMBER, text: str = TEXT, unicode: bool = False, sender: str = "Blossom"):
    return OutboundSms(
        reference=str(uuid.uuid4()), to=to, text=text, sender=sender, unicode=unicode
    )


def errors(kind: str) -> float:
    return REGISTRY.get_sample_value("blossom_sms_provider_errors_total", {"kind": kind}) or 0.0


# -- sending -------------------------------------------------------------------------------


async def test_accepted_send_returns_the_provider_id_and_carries_what_mitto_needs(fake, gateway):
    gsm, unicode = outbound(), outbound(text=f"Merci {CURLY}beaucoup{CURLY} 🌸", unicode=True)

    receipts = [await gateway.send(gsm), await gateway.send(unicode)]

    first, second = fake.accepted
    assert receipts == [SmsReceipt(first.provider_id), SmsReceipt(second.provider_id)]
    assert (first.reference, first.to, first.type, first.text) == (
        gsm.reference,
        "4915112345678",
        "GSM",
        TEXT,
    )
    assert (second.reference, second.type, second.sender) == (
        unicode.reference,
        "Unicode",
        "Blossom",
    )
    assert first.callback is None


async def test_a_numeric_sender_goes_as_digits_without_the_plus(fake, gateway):
    sms = outbound(sender="+15550002001")

    await gateway.send(sms)

    assert fake.by_reference(sms.reference).sender == "15550002001"


async def test_callback_url_goes_with_every_message(fake, sleeps):
    gateway = make_gateway(fake.base_url, sleeps, callback_url="https://app.test/dlr/s3cret")
    try:
        sms = outbound()
        await gateway.send(sms)
    finally:
        await gateway.aclose()
    assert fake.by_reference(sms.reference).callback == "https://app.test/dlr/s3cret"


async def test_server_errors_are_retried_with_backoff_and_the_message_is_sent_once(
    fake, gateway, sleeps
):
    fake.fail_next(503, count=2)
    before = errors("server_error")
    sms = outbound()

    receipt = await gateway.send(sms)

    assert receipt.provider_id == fake.by_reference(sms.reference).provider_id
    assert fake.accepted_by_reference[sms.reference] == 1
    assert fake.calls[SEND] == 3 and fake.calls[LOOKUP] == 0  # a 503 cannot have accepted it
    assert len(sleeps.waits) == 2 and all(0 <= wait <= 0.01 for wait in sleeps.waits)
    assert errors("server_error") - before == 2


async def test_internal_error_response_code_is_retried(fake, gateway):
    fake.fail_next(200, body={"id": None, "responseCode": 1, "responseText": "Internal error"})
    sms = outbound()

    await gateway.send(sms)

    assert fake.accepted_by_reference[sms.reference] == 1
    assert fake.calls[SEND] == 2


async def test_answer_lost_after_acceptance_is_found_by_lookup_not_resent(fake, gateway):
    fake.timeout_next(accept=True)  # Mitto has it; we never hear
    sms = outbound()

    receipt = await gateway.send(sms)

    assert fake.accepted_by_reference[sms.reference] == 1
    assert receipt.provider_id == fake.by_reference(sms.reference).provider_id
    assert fake.calls[SEND] == 1 and fake.calls[LOOKUP] == 1


async def test_request_lost_before_acceptance_is_looked_up_then_resent_once(fake, gateway):
    fake.timeout_next(accept=False)
    sms = outbound()

    receipt = await gateway.send(sms)

    assert fake.accepted_by_reference[sms.reference] == 1
    assert receipt.provider_id == fake.by_reference(sms.reference).provider_id
    assert fake.calls[SEND] == 2 and fake.calls[LOOKUP] == 1


async def test_lost_answer_is_never_resent_blind_when_the_lookup_cannot_tell(fake, gateway):
    fake.lookup_supported = False
    fake.timeout_next(accept=False)
    sms = outbound()

    with pytest.raises(SmsFateUnknown, match="lookup"):
        await gateway.send(sms)

    assert fake.calls[SEND] == 1  # whether Mitto had it was unknowable: no second POST


async def test_gateway_timeout_from_a_proxy_is_looked_up_before_resending(fake, gateway):
    fake.fail_next(504)
    sms = outbound()

    await gateway.send(sms)

    assert fake.calls[LOOKUP] == 1
    assert fake.accepted_by_reference[sms.reference] == 1


async def test_connection_refused_is_resent_without_a_lookup(sleeps):
    seen: list[str] = []

    def mitto(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if len(seen) == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"id": "m-1", "responseCode": 0, "responseText": "OK"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(mitto)) as client:
        gateway = make_gateway("http://mitto.test", sleeps, client=client)
        assert await gateway.send(outbound()) == SmsReceipt("m-1")

    assert seen == ["POST", "POST"]  # never reached Mitto, so nothing to look up


async def test_unreachable_mitto_is_unavailable_after_every_attempt(sleeps):
    seen: list[str] = []

    def down(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        raise httpx.ConnectTimeout("no route", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as client:
        gateway = make_gateway("http://mitto.test", sleeps, client=client, max_attempts=4)
        with pytest.raises(SmsUnavailable, match="unreachable") as caught:
            await gateway.send(outbound())

    assert seen == ["POST"] * 4
    assert caught.value.retry_after_seconds is None


async def test_rate_limit_waits_as_long_as_retry_after_says(fake, gateway, sleeps):
    fake.fail_next(429, retry_after=0.2)
    before = errors("rate_limited")
    sms = outbound()

    await gateway.send(sms)

    assert sleeps.waits == [0.2]
    assert fake.accepted_by_reference[sms.reference] == 1
    assert errors("rate_limited") - before == 1


async def test_rate_limit_reads_an_http_date(fake, gateway, sleeps):
    fake.fail_next(
        429, retry_after=format_datetime(datetime.now(UTC) + timedelta(seconds=30), True)
    )

    await gateway.send(outbound())

    assert len(sleeps.waits) == 1 and 20 < sleeps.waits[0] <= 30


async def test_a_long_retry_after_is_left_to_the_job_queue(fake, gateway, sleeps):
    fake.fail_next(429, retry_after=120)

    with pytest.raises(SmsUnavailable) as caught:
        await gateway.send(outbound())

    assert caught.value.retry_after_seconds == 120
    assert sleeps.waits == [] and fake.calls[SEND] == 1


async def test_persistent_rate_limit_reports_mittos_advice(fake, gateway):
    fake.fail_next(429, count=5, retry_after=0.2)

    with pytest.raises(SmsUnavailable) as caught:
        await gateway.send(outbound())

    assert caught.value.retry_after_seconds == 0.2
    assert fake.calls[SEND] == 3


async def test_persistent_server_errors_are_unavailable_after_max_attempts(fake, gateway):
    fake.fail_next(500, count=10)

    with pytest.raises(SmsUnavailable, match="HTTP 500") as caught:
        await gateway.send(outbound())

    assert fake.calls[SEND] == 3
    assert caught.value.retry_after_seconds is None
    assert fake.accepted == []


@pytest.mark.parametrize(
    ("sms", "code"),
    [
        (outbound(to="+4915100000000"), "invalid_number"),  # on the fake's reject list
        (outbound(to="+123"), "invalid_number"),  # too short to be a number
        (outbound(sender=""), "invalid_sender"),
        (outbound(sender="Far too long a sender"), "invalid_sender"),
        (outbound(text=""), "invalid_text"),
        (outbound(text=f"Hi {CURLY}there{CURLY}"), "invalid_text"),  # not GSM-7, yet sent as GSM
    ],
)
async def test_refusals_are_permanent_and_not_retried(fake, gateway, sms, code):
    fake.reject_numbers({"4915100000000"})
    before = errors("rejected")

    with pytest.raises(SmsRejected) as caught:
        await gateway.send(sms)

    assert caught.value.code == code
    assert fake.calls[SEND] == 1
    assert errors("rejected") - before == 1


async def test_wrong_key_is_unauthorized_and_not_retried(fake, sleeps):
    gateway = make_gateway(fake.base_url, sleeps, api_key="wrong")
    try:
        with pytest.raises(SmsUnauthorized):
            await gateway.send(outbound())
    finally:
        await gateway.aclose()
    assert fake.calls[SEND] == 1 and sleeps.waits == []


async def test_no_phone_number_or_text_reaches_the_logs(fake, gateway, caplog):
    fake.fail_next(503)
    fake.timeout_next(accept=True)
    fake.reject_numbers({"4915100000000"})
    caplog.set_level(logging.DEBUG, logger="blossom.mitto")

    await gateway.send(outbound())
    with pytest.raises(SmsRejected):
        await gateway.send(outbound(to="+4915100000000"))

    logged = [json.dumps(record.__dict__, default=str) for record in caplog.records]
    assert logged, "the adapter logged nothing at all"
    assert not [line for line in logged if "15112345678" in line or "15100000000" in line]
    assert not [line for line in logged if "20% off" in line]


@pytest.fixture
def spans(monkeypatch) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(gateway_module, "tracer", provider.get_tracer("blossom.mitto"))
    return exporter


async def test_send_and_lookup_are_spans_with_reference_and_outcome(fake, gateway, spans):
    fake.timeout_next(accept=True)
    sms = outbound()

    await gateway.send(sms)

    by_name = {span.name: span for span in spans.get_finished_spans()}
    assert by_name["mitto.send"].attributes == {
        "sms.reference": sms.reference,
        "sms.outcome": "accepted",
    }
    assert by_name["mitto.lookup"].attributes["sms.outcome"] == "found"
    assert by_name["mitto.lookup"].parent.span_id == by_name["mitto.send"].context.span_id


async def test_a_refusals_span_records_mittos_answer_without_the_number(sleeps, spans):
    def mitto(request: httpx.Request) -> httpx.Response:
        answer = f"Invalid receiver {NUMBER}"
        return httpx.Response(200, json={"responseCode": 8, "responseText": answer})

    async with httpx.AsyncClient(transport=httpx.MockTransport(mitto)) as client:
        gateway = make_gateway("http://mitto.test", sleeps, client=client)
        # The error carries Mitto's answer as it came; only what leaves the process is redacted.
        with pytest.raises(SmsRejected, match=NUMBER.removeprefix("+")):
            await gateway.send(outbound())

    [send] = spans.get_finished_spans()
    [event] = send.events
    assert (send.status.status_code, send.status.description) == (StatusCode.ERROR, "SmsRejected")
    assert event.attributes["exception.message"] == (
        "invalid_number: responseCode 8 Invalid receiver [phone]"
    )
    assert NUMBER not in event.attributes["exception.stacktrace"]


# -- lookup --------------------------------------------------------------------------------


async def test_lookup_finds_an_accepted_message(fake, gateway):
    sms = outbound()
    receipt = await gateway.send(sms)

    assert await gateway.lookup(sms.reference) == receipt


async def test_lookup_of_an_unknown_reference_is_none(gateway):
    assert await gateway.lookup("never-sent") is None


@pytest.mark.parametrize("status", [501, 405])
async def test_unsupported_lookup_is_unavailable(fake, gateway, status):
    fake.fail_next(status, method="GET")

    with pytest.raises(SmsUnavailable, match=f"HTTP {status}"):
        await gateway.lookup("anything")

    assert fake.calls[LOOKUP] == 1


async def test_lookup_switched_off_in_the_fake_answers_501(fake, gateway):
    fake.lookup_supported = False

    with pytest.raises(SmsUnavailable, match="HTTP 501"):
        await gateway.lookup("anything")


async def test_lookup_retries_transient_errors(fake, gateway):
    sms = outbound()
    receipt = await gateway.send(sms)
    fake.fail_next(503, method="GET")

    assert await gateway.lookup(sms.reference) == receipt
    assert fake.calls[LOOKUP] == 2


async def test_lookup_answer_for_another_reference_is_not_trusted(sleeps):
    def mitto(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "m-9", "reference": "someone-else"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(mitto)) as client:
        gateway = make_gateway("http://mitto.test", sleeps, client=client)
        with pytest.raises(SmsUnavailable, match="another reference"):
            await gateway.lookup("ours")


@pytest.mark.parametrize("answer_id", ["m" * 101, "m-\x00-1", ["m-1"]])
async def test_an_id_we_cannot_store_is_no_receipt_and_never_resent(sleeps, answer_id):
    """The message row keeps at most 100 characters of Mitto's id: a longer or odd one
    would fail the update after Mitto took the text, and the retry would send it again."""
    calls: list[str] = []

    def mitto(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(200, json={"id": answer_id, "responseCode": 0})

    async with httpx.AsyncClient(transport=httpx.MockTransport(mitto)) as client:
        gateway = make_gateway("http://mitto.test", sleeps, client=client)
        with pytest.raises(SmsFateUnknown):
            await gateway.send(outbound())

    assert calls.count("POST") == 1


# -- the fake's callbacks --------------------------------------------------------------------


async def test_fake_reports_and_inbound_messages_in_mittos_shapes(fake, gateway):
    received: list[httpx.Request] = []

    def app(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    sms = outbound()
    receipt = await gateway.send(sms)
    async with httpx.AsyncClient(transport=httpx.MockTransport(app)) as client:
        await fake.report("http://app.test/dlr", sms.reference, client=client)
        await fake.report(
            "http://app.test/dlr", sms.reference, "UNDELIV", shape="form", client=client
        )
        await fake.inbound("http://app.test/mo", NUMBER, "+4930123456", "STOP", client=client)

    report = json.loads(received[0].content)
    assert report["msgid"] == receipt.provider_id and report["reference"] == sms.reference
    assert report["status"] == "Delivered" and "timestamp" in report
    assert b"status=UNDELIV" in received[1].content
    inbound = json.loads(received[2].content)
    assert (inbound["from"], inbound["to"], inbound["text"]) == (
        "4915112345678",
        "4930123456",
        "STOP",
    )
    assert inbound["messageId"] and inbound["timestamp"]


# -- simulator -----------------------------------------------------------------------------


async def test_simulator_accepts_remembers_and_reports_delivery():
    reports: list[dict] = []
    arrived = asyncio.Event()

    async def app(request: httpx.Request) -> httpx.Response:
        reports.append(json.loads(request.content))
        arrived.set()
        return httpx.Response(200)

    client = httpx.AsyncClient(transport=httpx.MockTransport(app))
    simulator = SimulatorSmsGateway("http://app.test/dlr", delay_seconds=0, client=client)
    sms = outbound()
    try:
        receipt = await simulator.send(sms)
        await asyncio.wait_for(arrived.wait(), 5)
        assert receipt.provider_id.startswith("sim-")
        assert await simulator.lookup(sms.reference) == receipt
        assert await simulator.lookup("unknown") is None
        assert reports == [
            {
                "msgid": receipt.provider_id,
                "reference": sms.reference,
                "status": "Delivered",
                "timestamp": reports[0]["timestamp"],
            }
        ]
        assert datetime.fromisoformat(reports[0]["timestamp"]).tzinfo is not None
    finally:
        await simulator.aclose()
        await client.aclose()


async def test_simulator_report_failures_are_logged_not_raised(caplog):
    failed = asyncio.Event()

    def app(request: httpx.Request) -> httpx.Response:
        failed.set()
        raise httpx.ConnectError("app down", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(app))
    simulator = SimulatorSmsGateway("http://app.test/dlr", delay_seconds=0, client=client)
    try:
        await simulator.send(outbound())
        await asyncio.wait_for(failed.wait(), 5)
    finally:
        await simulator.aclose()  # waits for the report task: its failure must not surface
        await client.aclose()
    assert any(r.message == "simulated report not delivered" for r in caplog.records)


async def test_simulator_without_report_url_and_close_cancels_pending_reports():
    posted: list[httpx.Request] = []
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: posted.append(r)))
    quiet = SimulatorSmsGateway(None, client=client)
    slow = SimulatorSmsGateway("http://app.test/dlr", delay_seconds=3600, client=client)
    try:
        assert (await quiet.send(outbound())).provider_id.startswith("sim-")
        await slow.send(outbound())
    finally:
        await quiet.aclose()
        await slow.aclose()  # must not wait an hour
        await client.aclose()
    assert posted == []
