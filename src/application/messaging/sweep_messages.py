"""SweepMessages: the safety net under delivery, run periodically across shops.

A queued or sending message whose delivery job is gone (cancelled when the shop
uninstalled, cancelled by an operator, lost with a worker past its retries) gets a new
job: the job sends it, or fails it and releases its credits if the shop is gone. A
message left `unknown` by an interrupted send with no report within the provider's
validity period is expired and its credits released: the shop is never charged for a
text nobody can show was sent. Delivery reports held because no message matched them are
applied once one does, and forgotten after the same deadline.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from application.billing.debit_wallet import ReleaseDebit
from application.messaging.queue_messages import delivery_jobs
from application.messaging.record_delivery_report import RecordDeliveryReport
from application.ports import Clock, JobRequest, UnitOfWorkFactory
from domain.messages import Charge, MessageStatus

log = logging.getLogger("blossom.messages")

# Mitto keeps trying a text for 48 hours (its default validity); a report can lag a little.
REPORT_DEADLINE = timedelta(hours=72)
ORPHAN_AFTER = timedelta(minutes=15)
SWEEP_LIMIT = 5000


@dataclass(frozen=True, slots=True)
class SweepResult:
    requeued: int
    expired: int
    reports_matched: int = 0
    reports_dropped: int = 0


class SweepMessages:
    def __init__(self, uows: UnitOfWorkFactory, clock: Clock) -> None:
        self._uows = uows
        self._clock = clock
        self._record = RecordDeliveryReport(uows, clock)

    async def __call__(self) -> SweepResult:
        now = self._clock.now()
        async with self._uows.maintenance() as uow:
            orphans = await uow.messages.orphans(now - ORPHAN_AFTER, SWEEP_LIMIT)
            await uow.jobs.defer_many(_jobs(orphans))
            unresolved = await uow.messages.unresolved(now - REPORT_DEADLINE, SWEEP_LIMIT)
            await uow.commit()
        for shop_id, ids in _by_shop(unresolved).items():
            await self._expire(shop_id, ids)
        if orphans or unresolved:
            log.warning(
                "message sweep", extra={"requeued": len(orphans), "expired": len(unresolved)}
            )
        matched, dropped = await self._held_reports()
        return SweepResult(len(orphans), len(unresolved), matched, dropped)

    async def _held_reports(self) -> tuple[int, int]:
        """(matched, dropped): held reports whose message is now known are applied; those
        held past the deadline describe a send we never recorded or no longer have."""
        async with self._uows.maintenance() as uow:
            dropped = await uow.unmatched_reports.drop_received_before(
                self._clock.now() - REPORT_DEADLINE
            )
            held = await uow.unmatched_reports.oldest(SWEEP_LIMIT)
            await uow.commit()
        matched = [h.id for h in held if await self._record.apply(h.report) is not None]
        if matched:
            async with self._uows.maintenance() as uow:
                await uow.unmatched_reports.remove(matched)
                await uow.commit()
        if dropped:
            log.warning("held delivery reports dropped unmatched", extra={"dropped": dropped})
        return len(matched), dropped

    async def _expire(self, shop_id: uuid.UUID, ids: Sequence[uuid.UUID]) -> None:
        now = self._clock.now()
        async with self._uows.for_shop(shop_id) as uow:
            for message_id in ids:
                locked = await uow.messages.for_update(message_id)
                if locked is None or locked[0].status is not MessageStatus.UNKNOWN:
                    continue
                message, charge = locked
                if charge is Charge.RESERVED:
                    await ReleaseDebit()(
                        uow,
                        message_id=message_id,
                        credits=message.credits,
                        reason="no report in time",
                    )
                await uow.messages.advance(
                    message_id,
                    MessageStatus.EXPIRED,
                    charge=Charge.RELEASED if charge is Charge.RESERVED else charge,
                    detail="no delivery report within the validity period",
                    at=now,
                )
            await uow.commit()


def _by_shop(rows: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> dict[uuid.UUID, list[uuid.UUID]]:
    grouped: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for shop_id, message_id in rows:
        grouped[shop_id].append(message_id)
    return grouped


def _jobs(rows: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> list[JobRequest]:
    return [job for shop_id, ids in _by_shop(rows).items() for job in delivery_jobs(shop_id, ids)]
