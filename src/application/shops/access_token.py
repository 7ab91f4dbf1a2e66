"""A usable Admin API token for a shop: refreshed before it expires, one refresh at a time."""

from __future__ import annotations

import secrets
import uuid

from application.errors import NotInstalled, ShopifyRejected
from application.ports import Clock, ShopifyAuth, UnitOfWorkFactory
from domain.shops import ShopCredentials


class GetAccessToken:
    """Shopify rotates the refresh token on every use, so concurrent refreshes would race:
    the credentials row is locked while one caller refreshes, and the others then find
    the fresh token. A legacy non-expiring token is migrated to an expiring one once."""

    def __init__(self, uows: UnitOfWorkFactory, auth: ShopifyAuth, clock: Clock) -> None:
        self._uows = uows
        self._auth = auth
        self._clock = clock

    async def __call__(self, shop_id: uuid.UUID, shop_domain: str) -> str:
        async with self._uows.for_shop(shop_id) as uow:
            current = await uow.credentials.get()
        if current is None:
            raise NotInstalled(f"no credentials for {shop_domain}")
        if current.custom_app or (
            current.expiring and not current.needs_refresh(self._clock.now())
        ):
            return current.access_token
        return (await self._renew(shop_id, shop_domain)).access_token

    async def _renew(self, shop_id: uuid.UUID, shop_domain: str) -> ShopCredentials:
        async with self._uows.for_shop(shop_id) as uow:
            locked = await uow.credentials.get(for_update=True)
            if locked is None:
                raise NotInstalled(f"no credentials for {shop_domain}")
            if locked.expiring and not locked.needs_refresh(self._clock.now()):
                return locked  # another caller refreshed while we waited for the lock
            try:
                if locked.expiring and locked.refresh_token:
                    fresh = await self._auth.refresh(shop_domain, locked.refresh_token)
                    action = "token.refreshed"
                else:
                    fresh = await self._auth.migrate_legacy_token(shop_domain, locked.access_token)
                    action = "token.migrated_to_expiring"
            except ShopifyRejected:
                # The token is dead (revoked, or past its 90 days). Kept, it would fail every
                # call and keep token exchange from replacing it on the merchant's next visit.
                await uow.credentials.erase()
                await uow.audit.record(action="token.refresh_refused", actor="system")
                await uow.commit()
                raise NotInstalled(f"Shopify refused to renew the token of {shop_domain}") from None
            await uow.credentials.save(fresh)
            await uow.audit.record(action=action, actor="system")
            await uow.commit()
            return fresh

    async def forget(self, shop_id: uuid.UUID, rejected_token: str) -> None:
        """Shopify answered 401 to `rejected_token`: revoked, with no `app/uninstalled` (yet)
        to tell us. Kept, it would fail every job and make token exchange believe the shop
        still has a token, so the merchant reopening the app could not mend it. Only the
        token that was refused goes: a re-install or refresh may have replaced it since."""
        async with self._uows.for_shop(shop_id) as uow:
            locked = await uow.credentials.get(for_update=True)
            if locked is None or not secrets.compare_digest(
                locked.access_token.encode(), rejected_token.encode()
            ):
                return
            await uow.credentials.erase()
            await uow.audit.record(action="token.rejected", actor="shopify")
            await uow.commit()
