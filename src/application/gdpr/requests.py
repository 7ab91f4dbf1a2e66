"""Recording a request and its fulfilment: both leave an audit row, neither any PII."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from application.ports import Clock, IdGenerator, UnitOfWork
from domain.gdpr import GdprRequest, RequestKind, RequestSource, Subject

# Who acts, as the audit log and the ledger name them.
SHOPIFY_ACTOR = "shopify"
MERCHANT_ACTOR = "merchant"
OVERDUE_ACTOR = "gdpr:overdue"


class ReceiveRequest:
    """Track a request from the moment it arrives, with its legal due date."""

    def __init__(self, clock: Clock, ids: IdGenerator) -> None:
        self._clock = clock
        self._ids = ids

    async def __call__(
        self,
        uow: UnitOfWork,
        shop_id: uuid.UUID,
        kind: RequestKind,
        source: RequestSource,
        subject: Subject,
        *,
        actor: str,
        shopify_request_id: str | None = None,
    ) -> GdprRequest:
        request = GdprRequest.receive(
            id=self._ids.new_id(),
            shop_id=shop_id,
            kind=kind,
            source=source,
            subject=subject,
            received_at=self._clock.now(),
            shopify_request_id=shopify_request_id,
        )
        await uow.gdpr.add(request)
        await uow.audit.record(
            action="gdpr.request.received",
            actor=actor,
            subject=str(request.id),
            details={
                "kind": kind.value,
                "source": source.value,
                "due_at": request.due_at.isoformat(),
            },
        )
        return request


async def record_fulfilled(
    uow: UnitOfWork,
    request: GdprRequest,
    now: datetime,
    *,
    actor: str,
    details: Mapping[str, int],
) -> None:
    """Mark the request done; `details` are counts only, never who or what."""
    request.fulfil(now)
    await uow.gdpr.save(request)
    await uow.audit.record(
        action="gdpr.request.fulfilled",
        actor=actor,
        subject=str(request.id),
        details={"kind": request.kind.value, **details},
    )
