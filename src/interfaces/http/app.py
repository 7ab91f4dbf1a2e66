"""The Litestar application factory."""

from __future__ import annotations

from pathlib import Path

from litestar import Litestar, Response, Router, get
from litestar.di import NamedDependency, Provide
from litestar.exceptions import MethodNotAllowedException, NotFoundException
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.plugins.prometheus import PrometheusController
from litestar.template.config import TemplateConfig
from litestar.types import Middleware

from interfaces.bootstrap import Container
from interfaces.http.auth import AuthController
from interfaces.http.billing import BillingController, BillingReturnController
from interfaces.http.contacts import ContactController
from interfaces.http.gdpr import GdprController
from interfaces.http.messages import MessageController, MittoCallbackController
from interfaces.http.metrics import PROMETHEUS, count_unmatched
from interfaces.http.ops import OpsController, refresh_backlog_gauges
from interfaces.http.problems import JsonBodyRequest, problem_details_plugin
from interfaces.http.proxy import (
    ERROR_PAGES,
    PROXY_PATH,
    ProxyController,
    proxy_guard,
    routing_error,
)
from interfaces.http.request_id import RequestIdMiddleware
from interfaces.http.session import current_shop, session_guard
from interfaces.http.shops import ShopController
from interfaces.http.storefront import StorefrontController
from interfaces.http.tracing import ServerSpans
from interfaces.http.webhooks import ShopifyWebhookController

API_VERSION = "0.1.0"
TEMPLATES = Path(__file__).parent / "templates"


class MetricsController(PrometheusController):
    path = "/metrics"
    include_in_schema = False

    @get(include_in_schema=False)
    async def get(self, container: NamedDependency[Container]) -> Response:  # type: ignore[override]
        await refresh_backlog_gauges(container)
        return await PrometheusController.get.fn(self)


def observability() -> list[Middleware]:
    """Every request: a span, a request id, Prometheus counts and timings."""
    tracing = OpenTelemetryConfig(middleware_class=ServerSpans, exclude=["/metrics", "/healthz"])
    # Litestar lifts the OpenTelemetry middleware out of this list to wrap the whole app.
    return [tracing.middleware, RequestIdMiddleware(), PROMETHEUS.middleware]


def create_app(container: Container) -> Litestar:
    return Litestar(
        route_handlers=[
            OpsController,
            MetricsController,
            ShopifyWebhookController,
            MittoCallbackController,
            AuthController,
            BillingReturnController,
            Router(
                "/api/v1",
                route_handlers=[
                    ShopController,
                    ContactController,
                    GdprController,
                    BillingController,
                    MessageController,
                ],
                guards=[session_guard(container)],
                dependencies={"shop": Provide(current_shop, sync_to_thread=False)},
            ),
            Router(
                PROXY_PATH,
                route_handlers=[ProxyController, StorefrontController],
                guards=[proxy_guard(container)],
                exception_handlers=ERROR_PAGES,
                include_in_schema=False,
            ),
        ],
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        dependencies={
            "container": Provide(lambda: container, use_cache=True, sync_to_thread=False)
        },
        exception_handlers={
            NotFoundException: routing_error,
            MethodNotAllowedException: routing_error,
        },
        middleware=observability(),
        after_exception=[count_unmatched],
        plugins=[
            problem_details_plugin(),
        ],
        openapi_config=OpenAPIConfig(
            title="SMS Blossom",
            version=API_VERSION,
            path="/schema",
            render_plugins=[SwaggerRenderPlugin(), JsonRenderPlugin()],
        ),
        request_max_body_size=container.settings.max_request_body_bytes,
        request_class=JsonBodyRequest,
        debug=False,
        logging_config=None,  # our JSON logging is configured once, by the composition root
    )
