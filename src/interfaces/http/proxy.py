"""App proxy: storefront pages Shopify forwards to us, each request's signature verified.

Identity comes only from the signed `shop` and `logged_in_customer_id` parameters; there
are no cookies through the proxy, and personalised pages are never cached. Errors are
pages too: a shopper sees them inside the storefront.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers import BaseRouteHandler
from litestar.response import Template
from litestar.types import ExceptionHandlersMap, Guard

from infrastructure.shopify.signatures import SignatureError, verify_app_proxy_query
from interfaces.bootstrap import Container
from interfaces.http.problems import ANSWERED_AS_PROBLEMS, as_problem, problem_response

log = logging.getLogger("blossom.proxy")
PROXY_PATH = "/proxy"
NO_STORE = {"Cache-Control": "no-store, private"}
_WORDING = {
    404: ("Page not found", "Please go back to the store and try again."),
    413: ("That was too much to send", "Please shorten what you entered and try again."),
}
_CLIENT_ERROR = ("Something went wrong", "Please go back to the store and try again.")
_SERVER_ERROR = ("Something went wrong on our side", "Please try again in a few minutes.")


class ProxyUnauthorized(Exception):
    """Unsigned, tampered or stale proxy request."""


def proxy_guard(container: Container) -> Guard:
    async def require_proxy_signature(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        query = connection.scope["query_string"].decode("latin-1")
        try:
            proxied = verify_app_proxy_query(
                query, container.settings.shopify_secrets, now=time.time()
            )
        except SignatureError as exc:
            log.warning("proxy request rejected", extra={"reason": exc.reason})
            raise ProxyUnauthorized from None
        async with container.uow.for_shop_domain(proxied.shop) as uow:
            shop = await uow.shops.get(uow.shop_id) if uow.shop_id else None
        if shop is None or not shop.installed:
            raise ProxyUnauthorized
        connection.state.shop = shop
        connection.state.customer_id = proxied.logged_in_customer_id

    return require_proxy_signature


def unauthorized_page(_: Request[Any, Any, Any], __: ProxyUnauthorized) -> Response[Any]:
    return Template(
        template_name="proxy/unauthorized.html",
        status_code=401,
        headers=NO_STORE,
        context={"shop_name": None},
    )


def error_page(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """An error as a page: shoppers reach the proxy through the storefront, where problem+json
    would be a wall of code. Status, headers and logging are those of the API's problem."""
    problem = as_problem(exc)
    status = problem.status_code
    heading, message = _WORDING.get(status, _SERVER_ERROR if status >= 500 else _CLIENT_ERROR)
    return Template(
        template_name="proxy/message.html",
        status_code=status,
        headers={**(problem.headers or {}), **NO_STORE},
        # No shop's name: on a routing error the signature has not been checked.
        context={"shop_name": None, "heading": heading, "message": message},
    )


def routing_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """The app's handler for 404 and 405: routing raises them before the proxy router's
    handlers could answer, so the path tells a shopper's page from an API problem."""
    if f"{request.scope['path']}/".startswith(f"{PROXY_PATH}/"):
        return error_page(request, exc)
    return problem_response(request, exc)


ERROR_PAGES: ExceptionHandlersMap = {
    ProxyUnauthorized: unauthorized_page,
    **dict.fromkeys(ANSWERED_AS_PROBLEMS, error_page),
}


class ProxyController(Controller):
    path = "/"
    tags = ["app proxy"]

    @get("/ping", summary="A signed storefront page proving the proxy works")
    async def ping(self, request: Request[Any, Any, Any]) -> Template:
        return Template(
            template_name="proxy/ping.html",
            headers=NO_STORE,
            context={
                "shop_name": request.state.shop.name,
                "customer_id": request.state.customer_id,
            },
        )
