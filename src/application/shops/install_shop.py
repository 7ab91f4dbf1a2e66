"""Create or reactivate a shop with fresh credentials; follow-up work is deferred with it."""

from __future__ import annotations

from application.billing.fund_wallet import TRIAL_REFERENCE, GrantCredits
from application.errors import ScopesNotGranted
from application.ports import Clock, IdGenerator, UnitOfWork, UnitOfWorkFactory
from application.tasks import AFTER_INSTALL
from domain.shops import Shop, ShopCredentials

# What the product cannot work without; merchants may grant less than requested.
REQUIRED_SCOPES = ("read_customers",)


class InstallShop:
    """Idempotent: installing an installed shop replaces its credentials and install time."""

    def __init__(
        self, uows: UnitOfWorkFactory, clock: Clock, ids: IdGenerator, *, trial_credits: int = 0
    ) -> None:
        self._uows = uows
        self._clock = clock
        self._ids = ids
        self._trial_credits = trial_credits

    async def __call__(self, domain: str, credentials: ShopCredentials, *, source: str) -> Shop:
        async with self._uows.for_shop_domain(domain, exclusive=True) as uow:
            shop = await self.within(uow, domain, credentials, source=source)
            await uow.commit()
        return shop

    async def within(
        self, uow: UnitOfWork, domain: str, credentials: ShopCredentials, *, source: str
    ) -> Shop:
        """The install inside `uow`, opened `exclusive` for `domain`; the caller commits."""
        check_scopes(credentials)
        now = self._clock.now()
        if uow.shop_id is None:
            await uow.scope_to(self._ids.new_id())
            shop = await uow.shops.add(
                Shop(id=uow.shop_id, domain=domain, name=domain.split(".")[0], installed_at=now)
            )
            action = "shop.installed"
        else:
            shop = await uow.shops.get(uow.shop_id, for_update=True)
            action = "shop.credentials_renewed" if shop.installed else "shop.reinstalled"
            # Even a shop we still think installed: Shopify may have uninstalled and
            # reinstalled it before we handled that `app/uninstalled`, which must then
            # find itself older than this grant.
            shop.mark_installed(now)
            await uow.shops.save(shop)
        await uow.credentials.save(credentials)
        await uow.wallet.ensure()
        if self._trial_credits:
            # The reference makes this once per shop, however often it reinstalls.
            await GrantCredits()(
                uow,
                credits=self._trial_credits,
                reference=TRIAL_REFERENCE,
                reason="trial credits",
                source="install",
            )
        await uow.jobs.defer(
            AFTER_INSTALL.job({"shop_id": str(shop.id)}, queueing_lock=f"after-install:{shop.id}")
        )
        await uow.audit.record(action=action, actor=source, subject=domain)
        return shop


def check_scopes(credentials: ShopCredentials) -> None:
    missing = credentials.missing_scopes(REQUIRED_SCOPES)
    if missing:
        raise ScopesNotGranted(f"required scopes not granted: {', '.join(missing)}")
