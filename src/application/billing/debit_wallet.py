"""Reserve, capture and release the credits of one message; refund after a capture.

The references derive from the message id, so every step can be replayed safely: the
ledger records each reference once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from application.ports import UnitOfWork
from domain.billing import (
    EntryKind,
    LedgerEntry,
    WalletEntry,
    capture,
    credit,
    release,
    reserve,
)

log = logging.getLogger(__name__)


def _ref(message_id: uuid.UUID, step: str) -> str:
    return f"message:{message_id}:{step}"


def _reserve(message_id: uuid.UUID, credits: int, price_version: str) -> WalletEntry:
    return reserve(
        credits, _ref(message_id, "reserve"), "message queued", "messages", price_version
    )


def _capture(message_id: uuid.UUID, credits: int) -> WalletEntry:
    return capture(credits, _ref(message_id, "capture"), "provider accepted", "messages")


def _release(message_id: uuid.UUID, credits: int, reason: str) -> WalletEntry:
    return release(credits, _ref(message_id, "release"), reason, "messages")


def _refund(message_id: uuid.UUID, credits: int, reason: str) -> WalletEntry:
    return credit(EntryKind.REFUND, credits, _ref(message_id, "refund"), reason, "messages")


class DebitWallet:
    """Reserve a message's credits; `InsufficientCredits` when the balance can't cover it."""

    async def __call__(
        self, uow: UnitOfWork, *, message_id: uuid.UUID, credits: int, price_version: str
    ) -> LedgerEntry | None:
        return await uow.wallet.apply(_reserve(message_id, credits, price_version))

    async def many(
        self, uow: UnitOfWork, charges: Sequence[tuple[uuid.UUID, int]], *, price_version: str
    ) -> set[uuid.UUID]:
        """Reserve for a batch in order; returns the messages the balance could not cover."""
        entries = {_ref(message_id, "reserve"): message_id for message_id, _ in charges}
        _, refused = await uow.wallet.apply_many(
            [_reserve(message_id, credits, price_version) for message_id, credits in charges]
        )
        return {entries[entry.reference] for entry in refused}


class SettleDebits:
    """The batch form of the three below, for a delivery attempt: capture what the provider
    accepted, release what it will never send, refund what it took but could not deliver.
    One ledger call for the whole chunk."""

    async def __call__(
        self,
        uow: UnitOfWork,
        *,
        captures: Sequence[tuple[uuid.UUID, int]] = (),
        releases: Sequence[tuple[uuid.UUID, int]] = (),
        refunds: Sequence[tuple[uuid.UUID, int]] = (),
        reason: str,
    ) -> None:
        _, refused = await uow.wallet.apply_many(
            [_capture(m, c) for m, c in captures]
            + [_release(m, c, reason) for m, c in releases]
            + [_refund(m, c, reason) for m, c in refunds]
        )
        if refused:
            # Settling never overdraws unless a message was billed twice: the sends stand,
            # so the ledger keeps what it could and the engineer on call is told.
            log.error(
                "wallet refused settling entries",
                extra={"references": [entry.reference for entry in refused]},
            )


class CaptureDebit:
    """The provider accepted the message: the reservation is spent."""

    async def __call__(
        self, uow: UnitOfWork, *, message_id: uuid.UUID, credits: int
    ) -> LedgerEntry | None:
        return await uow.wallet.apply(_capture(message_id, credits))


class ReleaseDebit:
    """The message will never be sent: the reservation goes back to the balance."""

    async def __call__(
        self, uow: UnitOfWork, *, message_id: uuid.UUID, credits: int, reason: str
    ) -> LedgerEntry | None:
        return await uow.wallet.apply(_release(message_id, credits, reason))


class RefundMessage:
    """Credits back for a message already captured (say, the carrier never delivered)."""

    async def __call__(
        self, uow: UnitOfWork, *, message_id: uuid.UUID, credits: int, reason: str
    ) -> LedgerEntry | None:
        return await uow.wallet.apply(_refund(message_id, credits, reason))
