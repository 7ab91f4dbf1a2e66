"""Store authenticated Shopify deliveries and defer their processing, in one transaction."""

from __future__ import annotations

import enum
from collections.abc import Sequence

from application.ports import Admission, InboxEntry, WebhookIntake
from application.tasks import PROCESS_WEBHOOK


class IngestOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    UNKNOWN_SHOP = "unknown_shop"


class IngestWebhook:
    """Takes a batch (whatever arrived together) so a burst costs one commit, not one each;
    every delivery still gets its own outcome."""

    def __init__(self, intake: WebhookIntake) -> None:
        self._intake = intake

    async def __call__(self, entries: Sequence[InboxEntry]) -> list[IngestOutcome]:
        admissions = await self._intake.admit(entries, PROCESS_WEBHOOK.job())
        return [_outcome(admission) for admission in admissions]


def _outcome(admission: Admission) -> IngestOutcome:
    if admission.shop_id is None:
        return IngestOutcome.UNKNOWN_SHOP
    if admission.event_id is None:
        return IngestOutcome.DUPLICATE
    return IngestOutcome.ACCEPTED
