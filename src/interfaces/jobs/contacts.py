"""Contact tasks: push consent we recorded to Shopify; run CSV imports."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import procrastinate

from application.contacts.push_consent import PushConsentToShopify
from application.tasks import IMPORT_CONTACTS, PUSH_CONSENT
from infrastructure.queue.retry import BackoffRetry

if TYPE_CHECKING:
    from interfaces.bootstrap import Container


def contacts_blueprint(container: Container) -> procrastinate.Blueprint:
    bp = procrastinate.Blueprint()

    @bp.task(
        name=PUSH_CONSENT.name,
        queue=PUSH_CONSENT.queue,
        retry=BackoffRetry(max_attempts=10, base_seconds=5, cap_seconds=3600),
    )
    async def push_to_shopify(shop_id: str, contact_id: str) -> None:
        push = PushConsentToShopify(container.uow, container.shopify_admin)
        await push(uuid.UUID(shop_id), uuid.UUID(contact_id))

    import_retry = BackoffRetry(max_attempts=3, base_seconds=10)

    @bp.task(
        name=IMPORT_CONTACTS.name,
        queue=IMPORT_CONTACTS.queue,
        retry=import_retry,
        pass_context=True,
    )
    async def import_contacts(
        context: procrastinate.JobContext, shop_id: str, import_id: str
    ) -> None:
        last = context.job.attempts + 1 >= import_retry.max_attempts
        await container.run_contact_import()(
            uuid.UUID(shop_id), uuid.UUID(import_id), last_attempt=last
        )

    return bp
