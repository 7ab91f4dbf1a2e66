"""Reserve, capture and release the credits of one message; refund after a capture.

The references derive from the message id, so every step can be replayed safely: the
ledger records each reference once.
"""

from __future__ import annotations

import uuid

from application.ports import UnitOfWork
from domain.billing import EntryKind, LedgerEntry, capture, credit, release, reserve


def _ref(message_id: uuid.UUID, step: str) -> str:
    return f"message:{message_id}:{step}"


class DebitWallet:
    """Reserve a message's credits; `InsufficientCredits` when the balance can't cover it."""

    async def __call__(
        self, uow: UnitOfWork, *, message_id: uuid.UUID, credits: int, price_version: str
    ) -> LedgerEntry | None:
        return await uow.wallet.apply(
            reserve(
                credits, _ref(message_id, "reserve"), "message queued", "messages", price_version
            )
        )


class CaptureDebit:
    """The provider accepted the message: the reservation is spent."""

    async def __call__(
        self, uow: UnitOfWork, *, message_id: uuid.UUID, credits: int
    ) -> LedgerEntry | None:
        return await uow.wallet.apply(
            capture(credits, _ref(message_id, "capture"), "provider accepted", "messages")
        )


class ReleaseDebit:
    """The message will never be sent: the reservation goes back to the balance."""

    async def __call__(
        self, uow: UnitOfWork, *, message_id: uuid.UUID, credits: int, reason: str
    ) -> LedgerEntry | None:
        return await uow.wallet.apply(
            release(credits, _ref(message_id, "release"), reason, "messages")
        )


class RefundMessage:
    """Credits back for a message already captured (say, the carrier never delivered)."""

    async def __call__(
        self, uow: UnitOfWork, *, message_id: uuid.UUID, credits: int, reason: str
    ) -> LedgerEntry | None:
        return await uow.wallet.apply(
            credit(EntryKind.REFUND, credits, _ref(message_id, "refund"), reason, "messages")
        )
