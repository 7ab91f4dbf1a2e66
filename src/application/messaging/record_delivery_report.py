"""RecordDeliveryReport: the carrier's word on a message, applied once and only forward.

Reports are deduplicated per (message, status); a status only ever moves forward, so a
late "sent" never undoes "delivered". Money follows the status: a report of acceptance
captures a reservation still open (a send interrupted by a crash learns its fate here),
and a rejection releases it, or refunds it when it was already captured.

A report that matches no message yet (it can name only Mitto's id, and outrun the send
that saves that id) is held, not lost: Mitto is answered 200 and never sends it again. The
message sweep applies held reports through `apply` once their message is known.
"""

from __future__ import annotations

import logging
import uuid
from enum import StrEnum

from application.billing.debit_wallet import CaptureDebit, RefundMessage, ReleaseDebit
from application.ports import Clock, DeliveryReportIn, UnitOfWork, UnitOfWorkFactory
from domain.messages import Charge, MessageStatus, advances, status_from_provider

log = logging.getLogger("blossom.messages")

# Statuses after which the provider has taken (and billed) the message.
_TAKEN = frozenset(
    {
        MessageStatus.SENT,
        MessageStatus.DELIVERED,
        MessageStatus.UNDELIVERED,
        MessageStatus.EXPIRED,
    }
)
_REFUSED = frozenset({MessageStatus.REJECTED, MessageStatus.FAILED})


class ReportOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"  # recorded, but the message was already further along
    HELD = "held"  # no message matches yet: kept for the sweep to match later


class RecordDeliveryReport:
    def __init__(self, uows: UnitOfWorkFactory, clock: Clock) -> None:
        self._uows = uows
        self._clock = clock

    async def __call__(self, report: DeliveryReportIn) -> tuple[ReportOutcome, MessageStatus]:
        status = status_from_provider(report.status_word)
        outcome = await self.apply(report)
        if outcome is not None:
            return outcome, status
        log.warning("delivery report held: no message matches it yet", extra={"status": status})
        if not await self._uows.hold_report(report, status, self._clock.now()):
            return ReportOutcome.DUPLICATE, status
        return ReportOutcome.HELD, status

    async def apply(self, report: DeliveryReportIn) -> ReportOutcome | None:
        """Apply a report to its message; None when no message matches it."""
        found = await self._uows.locate_message(_uuid(report.reference), report.provider_id)
        if found is None:
            return None
        shop_id, message_id = found
        status = status_from_provider(report.status_word)
        now = self._clock.now()
        async with self._uows.for_shop(shop_id) as uow:
            locked = await uow.messages.for_update(message_id)
            if locked is None:
                return None
            message, charge = locked
            fresh = await uow.messages.add_report(
                message_id,
                status,
                provider_status=report.status_word,
                error_code=report.error_code,
                # An erased recipient's report keeps no raw payload: it can name the number.
                payload=report.raw if message.to else "",
                reported_at=report.reported_at,
                now=now,
            )
            if not fresh:
                return ReportOutcome.DUPLICATE
            if not advances(message.status, status):
                await uow.commit()
                return ReportOutcome.STALE
            new_charge = await self._bill(uow, message_id, message.credits, status, charge)
            detail = f"provider error {report.error_code}" if report.error_code else None
            await uow.messages.advance(
                message_id, status, charge=new_charge, detail=detail, at=report.reported_at or now
            )
            await uow.commit()
        return ReportOutcome.APPLIED

    async def _bill(
        self,
        uow: UnitOfWork,
        message_id: uuid.UUID,
        credits: int,
        status: MessageStatus,
        charge: Charge,
    ) -> Charge:
        if status in _TAKEN and charge is Charge.RESERVED:
            await CaptureDebit()(uow, message_id=message_id, credits=credits)
            return Charge.CAPTURED
        reason = f"provider reported {status}"
        if status in _REFUSED and charge is Charge.RESERVED:
            await ReleaseDebit()(uow, message_id=message_id, credits=credits, reason=reason)
            return Charge.RELEASED
        if status in _REFUSED and charge is Charge.CAPTURED:
            await RefundMessage()(uow, message_id=message_id, credits=credits, reason=reason)
            return Charge.REFUNDED
        return charge


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None
