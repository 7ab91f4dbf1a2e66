"""Admin API authentication: the embedded admin's session token (App Bridge JWT).

Every `/api/v1` route runs behind the session guard; the shop comes from the
token's `dest`, never from the body or query.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.types import Guard

from domain.shops import Shop
from infrastructure.shopify.signatures import SessionToken, SignatureError, decode_session_token
from interfaces.bootstrap import Container

# App Bridge retries a fetch with a fresh token when it sees this header (contract §1.9).
RETRY_HEADERS = {"X-Shopify-Retry-Invalid-Session-Request": "1"}


def session_token(
    connection: ASGIConnection[Any, Any, Any, Any], container: Container
) -> SessionToken:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise NotAuthorizedException(detail="missing session token", headers=RETRY_HEADERS)
    settings = container.settings
    try:
        return decode_session_token(
            token.strip(),
            settings.shopify_secrets,
            api_key=settings.shopify_api_key,
            now=time.time(),
        )
    except SignatureError as exc:
        raise NotAuthorizedException(
            detail=f"session token: {exc.reason}", headers=RETRY_HEADERS
        ) from None


def session_guard(container: Container) -> Guard:
    async def require_session_token(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        claims = session_token(connection, container)
        async with container.uow.for_shop_domain(claims.shop) as uow:
            shop = await uow.shops.get(uow.shop_id) if uow.shop_id else None
        if shop is None or not shop.installed:
            raise NotAuthorizedException(detail="shop is not installed", headers=RETRY_HEADERS)
        connection.state.shop = shop

    return require_session_token


def current_shop(request: Request[Any, Any, Any]) -> Shop:
    return request.state.shop


CurrentShop = NamedDependency[Shop]
