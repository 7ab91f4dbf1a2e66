"""OpenTelemetry tracing: provider set-up, spans that record failures redacted, and trace
context carried in job arguments."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.propagate import extract, inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Status, StatusCode
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext

from infrastructure.telemetry.logging import redact, redacted_traceback, request_id_var

log = logging.getLogger(__name__)
tracer = trace.get_tracer("sms_blossom")
_configured = False


def configure_tracing(exporter: str, service_name: str) -> None:
    """Install the tracer provider once per process; `none` still creates spans (no export)."""
    global _configured
    if _configured:
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )
        except ImportError:
            log.warning(
                "OTLP exporter requested but not installed: pip install 'sms-blossom[otlp]'"
            )
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    # Wraps engine creation, so it must run before the composition root builds engines.
    SQLAlchemyInstrumentor().instrument(enable_commenter=False)
    event.listen(Engine, "handle_error", _record_database_error)
    _configured = True


def _record_database_error(context: ExceptionContext) -> None:
    """Ends a failed statement's span with the error's first line, redacted. The SQLAlchemy
    instrumentation would record the driver's whole message, whose DETAIL quotes the row
    ("Key (phone)=(+1415…) already exists"). Listeners on the Engine class run before the
    instrumentation's own, on each engine, which finds no span left to end."""
    execution = context.execution_context
    span = getattr(execution, "_otel_span", None)
    if span is None:
        return
    if span.is_recording():
        first_line = str(context.original_exception).partition("\n")[0]
        span.set_status(Status(StatusCode.ERROR, redact(first_line)))
    span.end()
    execution._otel_span = None  # type: ignore[union-attr]


@contextmanager
def open_span(name: str, *, tracer: trace.Tracer = tracer, **options: Any) -> Iterator[trace.Span]:
    """`tracer.start_as_current_span(name, **options)`, except that a failure is recorded
    redacted, as logs and job_failures record it. OpenTelemetry's own recording copies the
    exception's text and stack trace verbatim, and those can quote phone numbers, e-mail
    addresses and tokens."""
    with tracer.start_as_current_span(
        name, record_exception=False, set_status_on_exception=False, **options
    ) as current:
        try:
            yield current
        except Exception as exc:  # not BaseException: a cancellation is no error
            _record_failure(current, exc)
            raise


def _record_failure(current: trace.Span, exc: Exception) -> None:
    if not current.is_recording():
        return  # formatting a traceback nobody keeps is wasted work
    current.set_status(Status(StatusCode.ERROR, type(exc).__name__))
    current.add_event(
        "exception",
        {
            "exception.type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "exception.message": redact(str(exc)),
            "exception.stacktrace": redacted_traceback(exc),
            "exception.escaped": "True",
        },
    )


def job_meta() -> dict[str, Any]:
    """What a deferred job carries from its origin: the request id and trace context."""
    carrier: dict[str, str] = {}
    inject(carrier)
    meta: dict[str, Any] = {k: v for k, v in carrier.items() if k in ("traceparent", "tracestate")}
    request_id = request_id_var.get()
    if request_id:
        meta["request_id"] = request_id
    return meta


def attach_job_meta(meta: Mapping[str, Any]) -> tuple[object, object]:
    """Resume the origin's trace and request id; returns tokens for `detach_job_meta`."""
    ctx_token = otel_context.attach(extract(dict(meta)))
    rid_token = request_id_var.set(meta.get("request_id"))
    return ctx_token, rid_token


def detach_job_meta(tokens: tuple[object, object]) -> None:
    ctx_token, rid_token = tokens
    request_id_var.reset(rid_token)  # type: ignore[arg-type]
    otel_context.detach(ctx_token)  # type: ignore[arg-type]
