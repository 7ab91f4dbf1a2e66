"""`ShopifyAuth` over httpx: the OAuth token endpoint for codes, session tokens,
refreshes and legacy-token migration (contract §1.5-1.9)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from application.errors import ShopifyRejected, ShopifyUnauthorized, ShopifyUnavailable
from domain.shops import ShopCredentials

log = logging.getLogger("blossom.shopify")

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105  (a grant type, not a secret)
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105


class HttpShopifyAuth:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        api_secret: str,
        scopes: tuple[str, ...],
        origin: Callable[[str], str],
        now: Callable[[], datetime],
    ) -> None:
        self._http = http
        self._api_key = api_key
        self._api_secret = api_secret
        self._scopes = scopes
        self._origin = origin
        self._now = now

    def authorize_url(self, shop_domain: str, *, state: str, redirect_uri: str) -> str:
        query = urlencode(
            {
                "client_id": self._api_key,
                "scope": ",".join(self._scopes),
                "redirect_uri": redirect_uri,
                "state": state,
            }
        )
        # The merchant's browser goes to the shop's own admin, never to a fake origin.
        return f"https://{shop_domain}/admin/oauth/authorize?{query}"

    async def exchange_code(self, shop_domain: str, code: str) -> ShopCredentials:
        return await self._token(shop_domain, {"code": code, "expiring": "1"})

    async def exchange_session_token(self, shop_domain: str, session_token: str) -> ShopCredentials:
        return await self._token(
            shop_domain,
            {
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": session_token,
                "subject_token_type": ID_TOKEN,
                "requested_token_type": OFFLINE_TOKEN,
                "expiring": "1",
            },
        )

    async def refresh(self, shop_domain: str, refresh_token: str) -> ShopCredentials:
        return await self._token(
            shop_domain, {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )

    async def migrate_legacy_token(self, shop_domain: str, access_token: str) -> ShopCredentials:
        return await self._token(
            shop_domain,
            {
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": access_token,
                "subject_token_type": OFFLINE_TOKEN,
                "requested_token_type": OFFLINE_TOKEN,
                "expiring": "1",
            },
        )

    async def _token(self, shop_domain: str, fields: Mapping[str, str]) -> ShopCredentials:
        url = f"{self._origin(shop_domain)}/admin/oauth/access_token"
        body = {"client_id": self._api_key, "client_secret": self._api_secret, **fields}
        try:
            response = await self._http.post(url, json=body, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            raise ShopifyUnavailable(f"token endpoint unreachable ({type(exc).__name__})") from exc
        # Throttled, or failing on Shopify's side: nothing was refused, the same grant may
        # be presented again (a refresh token stays usable until its replacement is used).
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise ShopifyUnavailable(f"token endpoint answered {response.status_code}")
        payload = json_object(response)
        if response.status_code == 401:
            raise ShopifyUnauthorized("Shopify refused the app credentials")
        if response.status_code != 200:
            # A code or refresh token is single-use: retrying cannot help.
            error = str(payload.get("error") or response.status_code)
            log.warning("token request refused", extra={"shop": shop_domain, "error": error})
            raise ShopifyRejected(f"Shopify refused the token request: {error}", [payload])
        try:
            return self._credentials(payload)
        except (KeyError, TypeError, ValueError):
            # A 200 we cannot read (a proxy's page, a cut body) is not a refusal: Shopify may
            # have granted, and calling it refused would make a refresh drop a live token.
            raise ShopifyUnavailable("token endpoint answered 200 without a usable token") from None

    def _credentials(self, payload: Mapping[str, Any]) -> ShopCredentials:
        now = self._now()

        def after(seconds: object) -> datetime | None:
            return now + timedelta(seconds=int(seconds)) if seconds else None

        if not isinstance(payload.get("access_token"), str) or not payload["access_token"]:
            raise ValueError("no access_token")
        return ShopCredentials(
            access_token=payload["access_token"],
            scopes=tuple(s.strip() for s in str(payload.get("scope", "")).split(",") if s.strip()),
            access_expires_at=after(payload.get("expires_in")),
            refresh_token=payload.get("refresh_token"),
            refresh_expires_at=after(payload.get("refresh_token_expires_in")),
        )


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object, or {} for HTML, empty or other JSON (e.g. a 404 page)."""
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}
