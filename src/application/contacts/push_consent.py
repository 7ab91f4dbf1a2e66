"""Tell Shopify a consent change we recorded (storefront, keyword, admin …).

The job reads the contact's current state when it runs, so retries and coalesced
changes always send the latest truth; sending the same state twice changes nothing.
"""

from __future__ import annotations

import uuid

from application.ports import ShopifyAdmin, ShopRef, UnitOfWorkFactory
from domain.consent import ConsentState

CONSENT_MUTATION = """
mutation customerSmsMarketingConsentUpdate($input: CustomerSmsMarketingConsentUpdateInput!) {
  customerSmsMarketingConsentUpdate(input: $input) {
    customer { id }
    userErrors { field message code }
  }
}
"""

# REDACTED is Shopify's own and read-only; UNKNOWN has no Shopify equivalent to assert.
_SHOPIFY_STATE = {
    ConsentState.PENDING: "PENDING",
    ConsentState.SUBSCRIBED: "SUBSCRIBED",
    ConsentState.UNSUBSCRIBED: "UNSUBSCRIBED",
}


class PushConsentToShopify:
    def __init__(self, uows: UnitOfWorkFactory, admin: ShopifyAdmin) -> None:
        self._uows = uows
        self._admin = admin

    async def __call__(self, shop_id: uuid.UUID, contact_id: uuid.UUID) -> bool:
        async with self._uows.for_shop(shop_id) as uow:
            shop = await uow.shops.get(shop_id)
            contact = await uow.contacts.get(contact_id)
            tail = await uow.consent.tail(contact_id) if contact else None
        if shop is None or not shop.installed or contact is None:
            return False
        state = _SHOPIFY_STATE.get(contact.consent_state)
        if state is None or contact.shopify_customer_id is None:
            return False
        consent: dict[str, str] = {"marketingState": state}
        if tail and tail.opt_in_level:
            consent["marketingOptInLevel"] = tail.opt_in_level.value.upper()
        if contact.consent_updated_at:
            consent["consentUpdatedAt"] = contact.consent_updated_at.isoformat()
        variables = {
            "input": {
                "customerId": f"gid://shopify/Customer/{contact.shopify_customer_id}",
                "smsMarketingConsent": consent,
            }
        }
        await self._admin.mutate(
            ShopRef(shop.id, shop.domain),
            "customerSmsMarketingConsentUpdate",
            CONSENT_MUTATION,
            variables,
        )
        return True
