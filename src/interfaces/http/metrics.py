"""Prometheus request metrics: Litestar's middleware, and the requests it never sees.

Litestar runs its Prometheus middleware inside each matched route, so a request that
matches none (a 404, a 405: a mistyped callback URL, a scanner) passes it by. Those are
counted when routing refuses them, all under one path label: a raw path would open a new
series for every probe. That costs the requests that do match nothing: the hook runs
only when an exception is handled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware

from infrastructure.telemetry.metrics import HTTP_REQUESTS

if TYPE_CHECKING:
    from litestar.types import Scope
    from prometheus_client import Counter

UNMATCHED = "<unmatched>"


class RequestMetrics(PrometheusMiddleware):
    def request_count(self, labels: dict[str, str | int | float]) -> Counter:
        # Ours rather than the one Litestar keeps to its middleware: the hook below counts
        # into the same series.
        return HTTP_REQUESTS


PROMETHEUS = PrometheusConfig(
    app_name="sms_blossom",
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
            app_name=PROMETHEUS.app_name,
        ).inc()
