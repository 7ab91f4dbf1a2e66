"""After an install: subscribe to the topics we handle and copy the shop's settings."""

from __future__ import annotations

import uuid

from application.errors import ShopifyRejected
from application.ports import ShopifyAdmin, ShopRef, UnitOfWorkFactory
from domain.events import topics_allowed_by


class AfterInstall:
    """`declared_in_app_config` means shopify.app.toml declares the subscriptions: a second,
    API-made subscription per topic would deliver every event twice. The app config
    reaches only installs of the app it configures, so a custom app's install (a token
    made in the shop's admin) subscribes through the API all the same."""

    def __init__(
        self,
        uows: UnitOfWorkFactory,
        admin: ShopifyAdmin,
        *,
        webhook_uri: str,
        declared_in_app_config: bool,
    ) -> None:
        self._uows = uows
        self._admin = admin
        self._webhook_uri = webhook_uri
        self._declared_in_app_config = declared_in_app_config

    async def __call__(self, shop_id: uuid.UUID) -> int:
        async with self._uows.for_shop(shop_id) as uow:
            shop = await uow.shops.get(shop_id)
            credentials = await uow.credentials.get()
        if shop is None or not shop.installed or credentials is None:
            return 0
        ref = ShopRef(shop.id, shop.domain)
        created, refused = 0, {}
        via_api = credentials.custom_app or not self._declared_in_app_config
        topics = topics_allowed_by(credentials.scopes) if via_api else []
        for topic in topics:
            # One refused topic (e.g. protected customer data not yet approved for the app)
            # must not cost the others, nor the shop's settings below.
            try:
                created += await self._admin.subscribe_webhook(ref, topic, self._webhook_uri)
            except ShopifyRejected as exc:
                refused[topic] = str(exc)[:300]
        info = await self._admin.shop_info(ref)
        async with self._uows.for_shop(shop_id) as uow:
            shop = await uow.shops.get(shop_id, for_update=True)
            shop.refresh(
                name=info.name,
                currency=info.currency,
                time_zone=info.timezone,
                country=info.country,
            )
            await uow.shops.save(shop)
            if refused:
                await uow.audit.record(
                    action="webhooks.subscription_refused", actor="shopify", details=refused
                )
            await uow.commit()
        return created
