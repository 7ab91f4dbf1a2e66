"""Prometheus request metrics: per route, and for the requests no route sees.

`RequestMetrics` keeps the series Litestar's Prometheus middleware keeps (count, errors,
duration, in progress; labelled by method, route template, status and app), for the
configuration below. Litestar's builds a `Request`, a label dict and four label lookups
for every request: about 70 µs, more than the bare route it measures. This one looks each
series' children up once per (method, route, status) and then only counts.

Litestar runs its Prometheus middleware inside each matched route, so a request that
matches none (a 404, a 405: a mistyped callback URL, a scanner) passes it by. Those are
counted when routing refuses them, all under one path label: a raw path would open a new
series for every probe. That costs the requests that do match nothing: the hook runs
only when an exception is handled.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from litestar.enums import ScopeType
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from infrastructure.telemetry.metrics import (
    HTTP_REQUEST_ERRORS,
    HTTP_REQUEST_SECONDS,
    HTTP_REQUESTS,
    HTTP_REQUESTS_IN_PROGRESS,
)

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from prometheus_client.metrics import MetricWrapperBase

UNMATCHED = "<unmatched>"
APP_NAME = "sms_blossom"


class _Series(NamedTuple):
    requests: MetricWrapperBase
    errors: MetricWrapperBase
    seconds: MetricWrapperBase


class RequestMetrics(PrometheusMiddleware):
    def __init__(self, app: ASGIApp, config: PrometheusConfig) -> None:
        super().__init__(app, config)
        self._series: dict[tuple[str, str, int], _Series] = {}
        self._in_progress: dict[tuple[str, str], MetricWrapperBase] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"] if scope["type"] == ScopeType.HTTP else scope["type"]
        route = scope["path_template"]
        in_progress = self._in_progress.get((method, route))
        if in_progress is None:
            # Litestar labels the gauge before the answer is known, as status 200.
            in_progress = HTTP_REQUESTS_IN_PROGRESS.labels(method, route, 200, APP_NAME)
            self._in_progress[(method, route)] = in_progress
        started = time.perf_counter()
        status, seconds = 200, 0.0

        async def timed_send(message: Message) -> None:
            nonlocal status, seconds
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                seconds = time.perf_counter() - started
            await send(message)

        in_progress.inc()
        try:
            await self.app(scope, receive, timed_send)
        finally:
            in_progress.dec()
            series = self._series_of(method, route, status)
            if status >= HTTP_500_INTERNAL_SERVER_ERROR:
                series.errors.inc()
            series.requests.inc()
            series.seconds.observe(seconds)

    def _series_of(self, method: str, route: str, status: int) -> _Series:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            labels = (method, route, status, APP_NAME)
            series = _Series(
                HTTP_REQUESTS.labels(*labels),
                HTTP_REQUEST_ERRORS.labels(*labels),
                HTTP_REQUEST_SECONDS.labels(*labels),
            )
            self._series[key] = series
        return series


PROMETHEUS = PrometheusConfig(
    app_name=APP_NAME,
    prefix="blossom",
    group_path=True,
    exclude=["/metrics"],
    middleware_class=RequestMetrics,
)


async def count_unmatched(exc: Exception, scope: Scope) -> None:
    """After-exception hook. Routing refuses by raising, before any route's middleware, and
    leaves no route template behind; exceptions raised inside a route were counted there."""
    if "path_template" not in scope:
        HTTP_REQUESTS.labels(
            method=scope.get("method", scope["type"]),
            path=UNMATCHED,
            status_code=getattr(exc, "status_code", 500),
            app_name=APP_NAME,
        ).inc()
