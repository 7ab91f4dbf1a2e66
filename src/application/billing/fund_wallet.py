"""Money into the wallet: a paid top-up, or credits granted (trial credits once per shop)."""

from __future__ import annotations

from application.ports import UnitOfWork
from domain.billing import EntryKind, LedgerEntry, credit

TRIAL_REFERENCE = "grant:trial"


class TopUpWallet:
    """`reference` names the payment (e.g. the Shopify purchase id): confirmed twice, added once."""

    async def __call__(
        self, uow: UnitOfWork, *, credits: int, reference: str, source: str
    ) -> LedgerEntry | None:
        await uow.wallet.ensure()
        return await uow.wallet.apply(
            credit(EntryKind.TOPUP, credits, f"topup:{reference}", "credits purchased", source)
        )


class GrantCredits:
    async def __call__(
        self, uow: UnitOfWork, *, credits: int, reference: str, reason: str, source: str
    ) -> LedgerEntry | None:
        await uow.wallet.ensure()
        return await uow.wallet.apply(credit(EntryKind.GRANT, credits, reference, reason, source))
