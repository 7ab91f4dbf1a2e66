"""One attempt at fulfilling a customer's request, inside the caller's unit of work."""

from __future__ import annotations

import logging

from application.gdpr.export_customer_data import ExportCustomerData
from application.gdpr.redact_customer import RedactCustomer
from application.ports import UnitOfWork
from domain.gdpr import GdprRequest, RequestKind

log = logging.getLogger("blossom.gdpr")


class FulfilRequest:
    """Export or erase now. A failed attempt is recorded on the request, which stays owed
    (and tracked against its due date) for the periodic job to retry: the webhook that
    brought it still completes. The attempt runs in a savepoint, so a database error in it
    is undone alone and the request and its failure are still recorded."""

    def __init__(self, export: ExportCustomerData, redact: RedactCustomer) -> None:
        self._export = export
        self._redact = redact

    async def __call__(self, uow: UnitOfWork, request: GdprRequest, *, actor: str) -> bool:
        # A shop's erasure is no attempt inside a tenant transaction: see PurgeShop.
        run = {RequestKind.DATA_REQUEST: self._export, RequestKind.REDACT: self._redact}[
            request.kind
        ]
        try:
            async with uow.savepoint():
                await run(uow, request, actor=actor)
        except Exception as exc:
            # Only the type: an exception's message may quote the data it choked on.
            error = type(exc).__name__
            log.warning(
                "gdpr request attempt failed",
                exc_info=True,
                extra={"request_id": str(request.id), "kind": request.kind.value},
            )
            request.attempt_failed(error)
            await uow.gdpr.save(request)
            await uow.audit.record(
                action="gdpr.request.attempt_failed",
                actor=actor,
                subject=str(request.id),
                details={"kind": request.kind.value, "error_type": error},
            )
            return False
        return True
