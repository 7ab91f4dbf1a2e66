"""The authorization-code install: a single-use state, then the code exchange."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from application.errors import PermanentError
from application.ports import Clock, ShopifyAuth, UnitOfWorkFactory
from application.shops.install_shop import InstallShop
from domain.shops import Shop

STATE_LIFETIME = timedelta(minutes=10)
# What BeginOAuthInstall issues; anything else names no state, and a NUL in it would
# reach Postgres as an error rather than as a refusal.
_STATE = re.compile(r"[0-9a-f]{64}")


class InvalidOAuthState(PermanentError):
    """Unknown, reused, expired, or issued for another shop."""


class BeginOAuthInstall:
    def __init__(self, uows: UnitOfWorkFactory, auth: ShopifyAuth, clock: Clock) -> None:
        self._uows = uows
        self._auth = auth
        self._clock = clock

    async def __call__(self, shop_domain: str, *, redirect_uri: str) -> str:
        """Returns Shopify's authorize URL. The state is lowercase hex (contract §1.3a)."""
        state = secrets.token_hex(32)
        async with self._uows.maintenance() as uow:
            await uow.oauth_states.put(state, shop_domain, self._clock.now() + STATE_LIFETIME)
            await uow.commit()
        return self._auth.authorize_url(shop_domain, state=state, redirect_uri=redirect_uri)


class CompleteOAuthInstall:
    """Called with a callback whose `hmac` and timestamp were already verified."""

    def __init__(
        self, uows: UnitOfWorkFactory, auth: ShopifyAuth, install: InstallShop, clock: Clock
    ) -> None:
        self._uows = uows
        self._auth = auth
        self._install = install
        self._clock = clock

    async def __call__(self, shop_domain: str, *, code: str, state: str) -> Shop:
        if not _STATE.fullmatch(state):
            raise InvalidOAuthState("the install link is not one we issued; start again")
        async with self._uows.maintenance() as uow:
            started_for = await uow.oauth_states.consume(state, self._clock.now())
            await uow.commit()
        if started_for is None or not secrets.compare_digest(started_for, shop_domain):
            raise InvalidOAuthState("the install link expired or was already used; start again")
        credentials = await self._auth.exchange_code(shop_domain, code)
        return await self._install(shop_domain, credentials, source="oauth")
