"""One trace from the deferring code into the job and its database calls."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from opentelemetry import trace
from opentelemetry.trace import StatusCode
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from domain.gdpr import GdprRequest, RequestKind, RequestSource, Subject, due_date
from infrastructure.telemetry.tracing import tracer
from interfaces.http.app import create_app
from interfaces.http.tracing import ServerSpans
from tests.conftest import add_shop
from tests.integration.test_session_and_proxy import _token
from tests.support import tasks
from tests.support.http import client
from tests.support.messaging import fake_mitto_container, fund
from tests.support.queue import drain

pytestmark = pytest.mark.usefixtures("clean_db")


async def test_job_span_continues_the_deferring_trace_and_db_calls_are_spans(container, spans):
    shop = await add_shop(container)
    with tracer.start_as_current_span("origin") as origin:
        async with container.uow.for_shop(shop.id) as uow:
            await uow.jobs.defer(tasks.RECORD.job({"marker": "traced"}))
            await uow.commit()
    await drain(container, "maintenance")

    finished = spans.get_finished_spans()
    trace_id = origin.get_span_context().trace_id
    job = next(s for s in finished if s.name == f"job {tasks.RECORD.qualified}")
    assert job.context.trace_id == trace_id
    assert job.parent.span_id == origin.get_span_context().span_id
    statements = [
        s.attributes["db.statement"]
        for s in finished
        if s.context.trace_id == trace_id and "db.statement" in s.attributes
    ]
    assert any("procrastinate" in statement for statement in statements), (
        "the deferring transaction's statements are spans in the trace"
    )


async def test_a_failed_jobs_span_records_its_error_redacted_like_job_failures(container, spans):
    tasks.flaky_state["fail"] = True
    shop = await add_shop(container)
    async with container.uow.for_shop(shop.id) as uow:
        await uow.jobs.defer(tasks.FLAKY.job({"n": 7}))
        await uow.commit()
    await drain(container, "maintenance")

    name = f"job {tasks.FLAKY.qualified}"
    [*_, last] = [s for s in spans.get_finished_spans() if s.name == name]
    [event] = last.events
    assert (last.status.status_code, last.status.description) == (
        trace.StatusCode.ERROR,
        "TransientError",
    )
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "application.errors.TransientError"
    assert event.attributes["exception.message"] == "flaky failure for [phone] (n=7)"
    assert "flaky failure for [phone]" in event.attributes["exception.stacktrace"]
    assert "+14155550132" not in event.attributes["exception.stacktrace"]


async def test_a_failed_statements_span_keeps_no_row_values(container, spans):
    shop = await add_shop(container)
    async with container.uow.for_shop(shop.id) as uow:
        await uow.session.execute(text("CREATE TEMP TABLE phones (phone text UNIQUE)"))
        insert = text("INSERT INTO phones VALUES ('+14155550132')")
        await uow.session.execute(insert)
        with tracer.start_as_current_span("origin"), pytest.raises(IntegrityError):
            await uow.session.execute(insert)

    [failed] = [s for s in spans.get_finished_spans() if s.status.status_code is StatusCode.ERROR]
    assert "phones_phone_key" in failed.status.description, "the constraint is told"
    assert "+14155550132" not in failed.status.description
    assert "DETAIL" not in failed.status.description


async def test_http_requests_are_traced(container, spans):
    async with client(create_app(container)) as http:
        await http.get("/readyz")
    names = [s.name for s in spans.get_finished_spans()]
    assert any(name.startswith("GET /readyz") for name in names)


async def test_a_request_span_continues_the_callers_trace_and_is_named_by_route(container, spans):
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with client(create_app(container)) as http:
        response = await http.get(
            f"/api/v1/messages/{uuid.uuid4()}",
            headers={"traceparent": f"00-{trace_id}-{parent_id}-01"},
        )

    assert response.status_code == 401
    [span] = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert span.name == "GET /api/v1/messages/{message_id}", "the route, not the id"
    assert format(span.context.trace_id, "032x") == trace_id
    assert format(span.parent.span_id, "016x") == parent_id
    assert span.attributes["http.route"] == "/api/v1/messages/{message_id}"
    assert span.attributes["http.response.status_code"] == 401
    assert span.status.status_code == trace.StatusCode.UNSET, "a client error is no failure"


async def test_a_request_matching_no_route_is_named_by_its_method_alone(container, spans):
    path = "/s/abc/8f14e45fceea167a5a36dedd4bea2543/wp-login.php"
    async with client(create_app(container)) as http:
        response = await http.get(path)

    assert response.status_code == 404
    [span] = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    assert span.name == "GET", "a scanner's random paths must not become span names"
    assert span.attributes["url.path"] == path
    assert "http.route" not in span.attributes


async def test_an_error_escaping_the_app_is_on_the_request_span_redacted(container, spans):
    """Litestar answers most errors itself; one that escapes it still must not export the
    shopper's details its message quotes."""

    async def broken(scope, receive, send):
        raise RuntimeError("no contact for +14155550132")

    middleware = ServerSpans(broken, OpenTelemetryConfig(middleware_class=ServerSpans))
    scope = {"type": "http", "method": "POST", "path": "/x", "headers": [], "state": {}}
    with pytest.raises(RuntimeError):
        await middleware(scope, None, None)

    [span] = [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]
    [event] = span.events
    assert span.status.status_code == trace.StatusCode.ERROR
    assert event.attributes["exception.message"] == "no contact for [phone]"
    assert "+14155550132" not in event.attributes["exception.stacktrace"]


async def test_metrics_report_queue_depth(container):
    shop = await add_shop(container)
    async with container.uow.for_shop(shop.id) as uow:
        await uow.jobs.defer_many([tasks.RECORD.job({"n": n}) for n in range(3)])
        await uow.commit()
    async with client(create_app(container)) as http:
        metrics = (await http.get("/metrics")).text
    assert 'blossom_queue_depth{queue="maintenance",status="todo"} 3.0' in metrics


async def test_metrics_report_overdue_gdpr_requests_at_scrape_time(container):
    shop = await add_shop(container)
    received = datetime.now(UTC) - timedelta(days=31)
    async with container.uow.for_shop(shop.id) as uow:
        await uow.gdpr.add(
            GdprRequest(
                id=uuid.uuid4(),
                shop_id=shop.id,
                kind=RequestKind.DATA_REQUEST,
                source=RequestSource.MERCHANT,
                subject=Subject(shopify_customer_id=1),
                received_at=received,
                due_at=due_date(received),
            )
        )
        await uow.commit()
    async with client(create_app(container)) as http:
        metrics = (await http.get("/metrics")).text
    assert "blossom_gdpr_requests_overdue 1.0" in metrics


async def test_a_test_send_is_one_trace_from_the_request_to_the_provider_call(
    database_url, data_dir, spans
):
    async with fake_mitto_container(database_url, data_dir) as (_, container):
        shop = await add_shop(container)
        await fund(container, shop, 100)
        async with client(create_app(container)) as http:
            response = await http.post(
                "/api/v1/messages/test",
                headers={"Authorization": f"Bearer {_token(shop.domain)}"},
                json={"phone": "+14155550401", "text": "traced"},
            )
        assert response.status_code == 202
        await drain(container, "messages")

    finished = spans.get_finished_spans()
    request = next(s for s in finished if s.name.startswith("POST /api/v1/messages/test"))
    job = next(s for s in finished if s.name == "job messages:deliver")
    send = next(s for s in finished if s.name == "mitto.send")
    assert job.context.trace_id == request.context.trace_id == send.context.trace_id
    assert send.attributes["sms.reference"] == response.json()["id"]
