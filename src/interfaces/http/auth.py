"""Install and token endpoints: OAuth authorization-code grant and token exchange."""

from __future__ import annotations

import logging
import time

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import (
    ClientException,
    NotAuthorizedException,
    PermissionDeniedException,
    ServiceUnavailableException,
)
from litestar.params import FromQuery
from litestar.response import Redirect

from application.errors import (
    ScopesNotGranted,
    ShopifyRejected,
    ShopifyUnauthorized,
    ShopifyUnavailable,
)
from application.ports import RateLimit
from application.shops.oauth_install import (
    BeginOAuthInstall,
    CompleteOAuthInstall,
    InvalidOAuthState,
)
from application.shops.token_exchange import ExchangeSessionToken
from infrastructure.shopify.signatures import (
    SignatureError,
    normalize_shop_domain,
    verify_oauth_query,
)
from interfaces.bootstrap import Container
from interfaces.http.problems import within_limit
from interfaces.http.session import RETRY_HEADERS, session_token

# A merchant installs once; a few retries a minute is generous.
INSTALL_LIMIT = RateLimit(rate=20, period_seconds=600, burst=20)

log = logging.getLogger("blossom.auth")


def _shop(value: str | None) -> str:
    try:
        return normalize_shop_domain(value or "")
    except SignatureError:
        raise ClientException(detail="shop must be a domain like example.myshopify.com") from None


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]

    @get("/install", summary="Start the OAuth install: redirect to Shopify's grant screen")
    async def install(
        self, container: NamedDependency[Container], shop: FromQuery[str | None] = None
    ) -> Redirect:
        domain = _shop(shop)
        # Unauthenticated and each call stores a state: a loop on it must not fill a table.
        await within_limit(
            container.rate_limiter,
            f"install:{domain}",
            INSTALL_LIMIT,
            "too many install attempts for this shop; try again later",
        )
        begin = BeginOAuthInstall(container.uow, container.shopify_auth, container.clock)
        url = await begin(domain, redirect_uri=f"{container.settings.app_url}/auth/callback")
        return Redirect(url, status_code=302)

    @get("/callback", summary="OAuth callback: verify, exchange the code, install")
    async def callback(self, request: Request, container: NamedDependency[Container]) -> Redirect:
        query = request.scope["query_string"].decode("latin-1")
        try:
            params = verify_oauth_query(query, container.settings.shopify_secrets, now=time.time())
        except SignatureError as exc:
            if exc.reason == "bad shop domain":
                raise ClientException(detail="shop must be a *.myshopify.com domain") from None
            raise NotAuthorizedException(detail=f"install link: {exc.reason}") from None
        if not params.get("code") or not params.get("state"):
            raise ClientException(detail="the callback needs code and state")
        complete = CompleteOAuthInstall(
            container.uow, container.shopify_auth, container.install_shop(), container.clock
        )
        try:
            shop = await complete(params["shop"], code=params["code"], state=params["state"])
        except InvalidOAuthState as exc:
            raise ClientException(detail=str(exc)) from None
        except ShopifyRejected as exc:
            raise ClientException(detail=str(exc)) from None
        except ShopifyUnauthorized:
            raise _app_credentials_refused() from None
        except ShopifyUnavailable:
            raise ServiceUnavailableException(
                detail="Shopify is not answering; try again"
            ) from None
        log.info("shop installed", extra={"shop": shop.domain})
        return Redirect(f"https://{shop.domain}/admin/apps/{container.settings.shopify_api_key}")

    @post(
        "/token-exchange",
        status_code=200,
        summary="Exchange the session token for an offline token",
    )
    async def token_exchange(
        self, request: Request, container: NamedDependency[Container]
    ) -> dict[str, object]:
        claims = session_token(request, container)
        bearer = request.headers["authorization"].partition(" ")[2].strip()
        exchange = ExchangeSessionToken(
            container.uow, container.shopify_auth, container.install_shop()
        )
        try:
            result = await exchange(claims.shop, bearer)
        except ScopesNotGranted as exc:
            # Not the session token's fault: a 401 with the retry header would have App
            # Bridge retry, and each retry cost an exchange that ends the same way.
            log.error("granted scopes fall short", extra={"shop": claims.shop})
            raise PermissionDeniedException(detail=str(exc)) from None
        except ShopifyRejected as exc:
            # e.g. invalid_subject_token: App Bridge retries with a fresh session token.
            raise NotAuthorizedException(detail=str(exc), headers=RETRY_HEADERS) from None
        except ShopifyUnauthorized:
            raise _app_credentials_refused() from None
        except ShopifyUnavailable:
            raise ServiceUnavailableException(
                detail="Shopify is not answering; try again"
            ) from None
        return {"shop": result.shop.domain, "installed": True, "exchanged": result.exchanged}


def _app_credentials_refused() -> ServiceUnavailableException:
    """Shopify refused our API key and secret: a deployment fault the merchant cannot fix."""
    log.error("Shopify refused the app credentials (SHOPIFY_API_KEY / SHOPIFY_API_SECRET)")
    return ServiceUnavailableException(detail="the app cannot reach Shopify; we are on it")
