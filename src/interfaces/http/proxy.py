"""App proxy: storefront pages Shopify forwards to us, each request's signature verified.

Identity comes only from the signed `shop` and `logged_in_customer_id` parameters; there
are no cookies through the proxy, and personalised pages are never cached.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.response import Template
from litestar.types import Guard

from infrastructure.shopify.signatures import SignatureError, verify_app_proxy_query
from interfaces.bootstrap import Container

log = logging.getLogger("blossom.proxy")
NO_STORE = {"Cache-Control": "no-store, private"}


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
