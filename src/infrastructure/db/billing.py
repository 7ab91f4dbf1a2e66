"""The wallet and its append-only ledger: one conditional statement per entry."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial

from advanced_alchemy.base import DefaultBase, UUIDv7Base
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column
from uuid_utils.compat import uuid7

from domain.billing import (
    DEFAULT_LOW_BALANCE_THRESHOLD,
    EntryKind,
    InsufficientCredits,
    LedgerEntry,
    PendingTopUp,
    TopUpPackage,
    WalletBalance,
    WalletEntry,
)
from infrastructure.telemetry.metrics import WALLET_DEBITS, WALLET_LOW_BALANCE

log = logging.getLogger("blossom.billing")


class WalletModel(DefaultBase):
    __tablename__ = "wallets"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="ck_wallets_balance_not_negative"),
        CheckConstraint("reserved >= 0", name="ck_wallets_reserved_not_negative"),
    )

    shop_id: Mapped[uuid.UUID] = mapped_column(
        GUID(length=16), ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    balance: Mapped[int] = mapped_column(BigInteger, server_default="0")
    reserved: Mapped[int] = mapped_column(BigInteger, server_default="0")
    low_balance_threshold: Mapped[int] = mapped_column(
        BigInteger, server_default=str(DEFAULT_LOW_BALANCE_THRESHOLD)
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=func.now()
    )


class WalletTransactionModel(UUIDv7Base):
    __tablename__ = "wallet_transactions"
    __table_args__ = (
        UniqueConstraint("shop_id", "reference", name="uq_wallet_transactions_reference"),
        Index("ix_wallet_transactions_shop_created", "shop_id", "created_at", "id"),
    )

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    balance_delta: Mapped[int] = mapped_column(BigInteger)
    reserved_delta: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    reserved_after: Mapped[int] = mapped_column(BigInteger)
    reference: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64))
    price_version: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=func.now()
    )


class WalletTopUpModel(UUIDv7Base):
    __tablename__ = "wallet_topups"
    __table_args__ = (UniqueConstraint("shop_id", "purchase_id", name="uq_wallet_topups_purchase"),)

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    package: Mapped[str] = mapped_column(String(32))
    credits: Mapped[int] = mapped_column(BigInteger)
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    purchase_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), server_default=func.now()
    )


# The wallet row's update and the ledger row's insert are one statement: they happen
# together or not at all, and the row lock plus the WHERE condition (re-checked after a
# concurrent update commits) means concurrent debits can never overdraw.
_APPLY = text(
    """
    WITH w AS (
        UPDATE wallets
           SET balance = balance + :balance_delta, reserved = reserved + :reserved_delta,
               updated_at = now()
         WHERE shop_id = :shop_id
           AND balance + :balance_delta >= 0 AND reserved + :reserved_delta >= 0
        RETURNING balance, reserved, low_balance_threshold
    ), t AS (
        INSERT INTO wallet_transactions
            (id, shop_id, kind, balance_delta, reserved_delta, balance_after, reserved_after,
             reference, reason, source, price_version)
        SELECT :id, :shop_id, :kind, :balance_delta, :reserved_delta, w.balance, w.reserved,
               :reference, :reason, :source, :price_version
          FROM w
        RETURNING balance_after, reserved_after
    )
    SELECT t.balance_after, t.reserved_after, w.low_balance_threshold FROM t, w
    """
)
# The batch twin of _APPLY: the wallet row is locked first (every ledger writer locks it
# before inserting), so the replay check, the arithmetic and the write see one state.
_LOCK_WALLET = text(
    "SELECT balance, reserved, low_balance_threshold FROM wallets "
    "WHERE shop_id = :shop_id FOR UPDATE"
)
_RECORDED = text(
    "SELECT reference FROM wallet_transactions "
    "WHERE shop_id = :shop_id AND reference = ANY(CAST(:references AS varchar[]))"
)
_APPLY_MANY = text(
    """
    WITH w AS (
        UPDATE wallets SET balance = :balance, reserved = :reserved, updated_at = now()
         WHERE shop_id = :shop_id
    )
    INSERT INTO wallet_transactions
        (id, shop_id, kind, balance_delta, reserved_delta, balance_after, reserved_after,
         reference, reason, source, price_version)
    SELECT u.id, :shop_id, u.kind, u.balance_delta, u.reserved_delta, u.balance_after,
           u.reserved_after, u.reference, u.reason, u.source, u.price_version
      FROM unnest(CAST(:ids AS uuid[]), CAST(:kinds AS varchar[]),
           CAST(:balance_deltas AS bigint[]), CAST(:reserved_deltas AS bigint[]),
           CAST(:balance_afters AS bigint[]), CAST(:reserved_afters AS bigint[]),
           CAST(:references AS varchar[]), CAST(:reasons AS text[]),
           CAST(:sources AS varchar[]), CAST(:price_versions AS varchar[]))
        AS u(id, kind, balance_delta, reserved_delta, balance_after, reserved_after,
             reference, reason, source, price_version)
    """
)
_ENSURE = text("INSERT INTO wallets (shop_id) VALUES (:shop_id) ON CONFLICT DO NOTHING")
_BALANCED = text(
    """
    SELECT w.balance = coalesce(sum(t.balance_delta), 0)
       AND w.reserved = coalesce(sum(t.reserved_delta), 0)
      FROM wallets w LEFT JOIN wallet_transactions t ON t.shop_id = w.shop_id
     WHERE w.shop_id = :shop_id
     GROUP BY w.balance, w.reserved
    """
)


class SqlWallet:
    def __init__(
        self,
        session: AsyncSession,
        shop_id: uuid.UUID | None,
        after_commit: Callable[[Callable[[], None]], None],
    ) -> None:
        self._session = session
        self._shop_id = shop_id
        # Debits and the low-balance signal are told once committed: a batch rolled back
        # (a failed queueing, a retried job) spent nothing.
        self._after_commit = after_commit

    async def ensure(self) -> None:
        await self._session.execute(_ENSURE, {"shop_id": self._shop_id})

    async def balance(self) -> WalletBalance | None:
        row = await self._session.get(WalletModel, self._shop_id)
        if row is None:
            return None
        return WalletBalance(row.balance, row.reserved, row.low_balance_threshold)

    async def apply(self, entry: WalletEntry) -> LedgerEntry | None:
        """The entry as recorded, or None when its reference was already recorded."""
        params = {
            "id": uuid7(),
            "shop_id": self._shop_id,
            "kind": entry.kind.value,
            "balance_delta": entry.balance_delta,
            "reserved_delta": entry.reserved_delta,
            "reference": entry.reference,
            "reason": entry.reason,
            "source": entry.source,
            "price_version": entry.price_version,
        }
        try:
            async with self._session.begin_nested():
                row = (await self._session.execute(_APPLY, params)).first()
        except IntegrityError as exc:
            if "uq_wallet_transactions_reference" in str(exc.orig):
                return None
            raise
        if row is None:
            if await self._recorded(entry.reference):
                return None  # a replay whose effect would now overdraw: it already happened
            raise InsufficientCredits(needed=-entry.balance_delta, reference=entry.reference)
        balance_after, reserved_after, threshold = row
        self._after_commit(partial(_observe, entry, balance_after, threshold))
        return LedgerEntry(entry=entry, balance_after=balance_after, reserved_after=reserved_after)

    async def apply_many(
        self, entries: Sequence[WalletEntry]
    ) -> tuple[list[LedgerEntry], list[WalletEntry]]:
        """Apply entries in order, in three round trips whatever their number.

        Returns the entries recorded and those refused because they would overdraw; an
        entry whose reference is already recorded is neither (a replay changes nothing).
        """
        if not entries:
            return [], []
        wallet = (await self._session.execute(_LOCK_WALLET, {"shop_id": self._shop_id})).first()
        if wallet is None:
            return [], list(entries)
        balance, reserved, threshold = wallet
        opening = balance
        recorded = set(
            await self._session.scalars(
                _RECORDED, {"shop_id": self._shop_id, "references": [e.reference for e in entries]}
            )
        )
        applied: list[LedgerEntry] = []
        refused: list[WalletEntry] = []
        for entry in entries:
            if entry.reference in recorded:
                continue
            if balance + entry.balance_delta < 0 or reserved + entry.reserved_delta < 0:
                refused.append(entry)
                continue
            balance += entry.balance_delta
            reserved += entry.reserved_delta
            recorded.add(entry.reference)
            applied.append(LedgerEntry(entry, balance_after=balance, reserved_after=reserved))
        if applied:
            await self._session.execute(_APPLY_MANY, self._many_params(applied, balance, reserved))
            self._after_commit(partial(_observe_many, applied, opening, threshold))
        return applied, refused

    def _many_params(
        self, applied: Sequence[LedgerEntry], balance: int, reserved: int
    ) -> dict[str, object]:
        return {
            "shop_id": self._shop_id,
            "balance": balance,
            "reserved": reserved,
            "ids": [uuid7() for _ in applied],
            "kinds": [a.entry.kind.value for a in applied],
            "balance_deltas": [a.entry.balance_delta for a in applied],
            "reserved_deltas": [a.entry.reserved_delta for a in applied],
            "balance_afters": [a.balance_after for a in applied],
            "reserved_afters": [a.reserved_after for a in applied],
            "references": [a.entry.reference for a in applied],
            "reasons": [a.entry.reason for a in applied],
            "sources": [a.entry.source for a in applied],
            "price_versions": [a.entry.price_version for a in applied],
        }

    async def set_low_balance_threshold(self, credits: int) -> None:
        await self._session.execute(
            update(WalletModel)
            .where(WalletModel.shop_id == self._shop_id)
            .values(low_balance_threshold=credits, updated_at=func.now())
        )

    async def record_topup(
        self, topup_id: uuid.UUID, package: TopUpPackage, purchase_id: str
    ) -> None:
        await self._session.execute(
            insert(WalletTopUpModel).values(
                id=topup_id,
                shop_id=self._shop_id,
                package=package.id,
                credits=package.credits,
                price_minor=package.price_minor,
                currency=package.currency,
                purchase_id=purchase_id,
            )
        )

    async def topup(
        self, *, purchase_id: str | None = None, topup_id: uuid.UUID | None = None
    ) -> PendingTopUp | None:
        query = select(WalletTopUpModel).where(WalletTopUpModel.shop_id == self._shop_id)
        if purchase_id is not None:
            query = query.where(WalletTopUpModel.purchase_id == purchase_id)
        if topup_id is not None:
            query = query.where(WalletTopUpModel.id == topup_id)
        row = (await self._session.scalars(query)).first()
        return PendingTopUp(row.id, row.purchase_id, row.credits) if row else None

    async def _recorded(self, reference: str) -> bool:
        found = await self._session.scalar(
            select(WalletTransactionModel.id).where(
                WalletTransactionModel.shop_id == self._shop_id,
                WalletTransactionModel.reference == reference,
            )
        )
        return found is not None

    async def history(
        self, *, limit: int, before: tuple[datetime, uuid.UUID] | None = None
    ) -> list[tuple[uuid.UUID, datetime, LedgerEntry]]:
        query = select(WalletTransactionModel).where(
            WalletTransactionModel.shop_id == self._shop_id
        )
        if before is not None:
            at, last = before
            query = query.where(
                or_(
                    WalletTransactionModel.created_at < at,
                    and_(WalletTransactionModel.created_at == at, WalletTransactionModel.id < last),
                )
            )
        query = query.order_by(
            WalletTransactionModel.created_at.desc(), WalletTransactionModel.id.desc()
        ).limit(limit)
        return [
            (
                row.id,
                row.created_at,
                LedgerEntry(
                    entry=WalletEntry(
                        kind=EntryKind(row.kind),
                        balance_delta=row.balance_delta,
                        reserved_delta=row.reserved_delta,
                        reference=row.reference,
                        reason=row.reason,
                        source=row.source,
                        price_version=row.price_version,
                    ),
                    balance_after=row.balance_after,
                    reserved_after=row.reserved_after,
                ),
            )
            for row in await self._session.scalars(query)
        ]

    async def balanced(self) -> bool:
        """The balance and reserved amount equal the ledger's sums."""
        return bool(await self._session.scalar(_BALANCED, {"shop_id": self._shop_id}))


def _observe_many(applied: Sequence[LedgerEntry], opening: int, threshold: int) -> None:
    for kind in (EntryKind.RESERVE, EntryKind.CAPTURE):
        credits = sum(abs(a.entry.reserved_delta) for a in applied if a.entry.kind is kind)
        if credits:
            WALLET_DEBITS.labels(kind.value).inc(credits)
    closing = applied[-1].balance_after
    if closing < threshold <= opening:
        WALLET_LOW_BALANCE.inc()
        log.warning(
            "wallet crossed its low-balance threshold",
            extra={"balance": closing, "threshold": threshold, "entries": len(applied)},
        )


def _observe(entry: WalletEntry, balance_after: int, threshold: int) -> None:
    if entry.kind in (EntryKind.RESERVE, EntryKind.CAPTURE):
        WALLET_DEBITS.labels(entry.kind.value).inc(abs(entry.reserved_delta))
    if balance_after < threshold <= balance_after - entry.balance_delta:
        WALLET_LOW_BALANCE.inc()
        log.warning(
            "wallet crossed its low-balance threshold",
            extra={"balance": balance_after, "threshold": threshold, "reference": entry.reference},
        )
