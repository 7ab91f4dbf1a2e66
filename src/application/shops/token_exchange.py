"""The embedded admin's first load: its session token exchanged for the shop's offline token."""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import ShopifyAuth, UnitOfWork, UnitOfWorkFactory
from application.shops.install_shop import InstallShop
from domain.shops import Shop


@dataclass(frozen=True, slots=True)
class TokenExchangeResult:
    shop: Shop
    exchanged: bool


class ExchangeSessionToken:
    """At most one exchange per shop at a time, across processes. Every exchange makes
    Shopify issue a new pair and retire the previous refresh token, so two first loads
    exchanging at once could store the older pair last: its refresh token is dead, and an
    hour later the shop would lose its token. The shop's domain lock is held from the check
    through the exchange to the commit; a load that waited finds the token stored."""

    def __init__(self, uows: UnitOfWorkFactory, auth: ShopifyAuth, install: InstallShop) -> None:
        self._uows = uows
        self._auth = auth
        self._install = install

    async def __call__(self, shop_domain: str, session_token: str) -> TokenExchangeResult:
        # Every admin load lands here: the common case needs no lock.
        async with self._uows.for_shop_domain(shop_domain) as uow:
            shop = await _usable(uow)
        if shop is not None:
            return TokenExchangeResult(shop, exchanged=False)
        async with self._uows.for_shop_domain(shop_domain, exclusive=True) as uow:
            shop = await _usable(uow)
            if shop is not None:
                return TokenExchangeResult(shop, exchanged=False)
            credentials = await self._auth.exchange_session_token(shop_domain, session_token)
            shop = await self._install.within(
                uow, shop_domain, credentials, source="token_exchange"
            )
            await uow.commit()
        return TokenExchangeResult(shop, exchanged=True)


async def _usable(uow: UnitOfWork) -> Shop | None:
    """The shop when it is installed and holds a token, else None."""
    if uow.shop_id is None:
        return None
    shop = await uow.shops.get(uow.shop_id)
    if shop is None or not shop.installed or await uow.credentials.get() is None:
        return None
    return shop
