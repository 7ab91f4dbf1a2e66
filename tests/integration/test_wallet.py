"""The wallet ledger on real Postgres: no overdraft under concurrency, idempotent
references, balances equal to the ledger's sums, tenant isolation."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from application.billing.debit_wallet import CaptureDebit, DebitWallet, RefundMessage, ReleaseDebit
from application.billing.fund_wallet import GrantCredits, TopUpWallet
from domain.billing import InsufficientCredits
from tests.conftest import add_shop
from tests.support.processes import blossom, child_env
from tests.support.settings import make_environ

pytestmark = pytest.mark.usefixtures("clean_db")


async def _fund(container, shop, credits: int) -> None:
    async with container.uow.for_shop(shop.id) as uow:
        await TopUpWallet()(uow, credits=credits, reference=f"test-{uuid.uuid4()}", source="test")
        await uow.commit()


async def _state(container, shop) -> tuple[int, int, bool]:
    async with container.uow.for_shop(shop.id) as uow:
        wallet = await uow.wallet.balance()
        return wallet.balance, wallet.reserved, await uow.wallet.balanced()


async def _reserve(container, shop, credits: int, message_id=None) -> bool:
    try:
        async with container.uow.for_shop(shop.id) as uow:
            await DebitWallet()(
                uow, message_id=message_id or uuid.uuid4(), credits=credits, price_version="test"
            )
            await uow.commit()
        return True
    except InsufficientCredits:
        return False


async def test_200_concurrent_debits_against_a_balance_for_100_succeed_exactly_100_times(container):
    shop = await add_shop(container)
    await _fund(container, shop, 100 * 3)

    results = await asyncio.gather(*(_reserve(container, shop, 3) for _ in range(200)))

    assert results.count(True) == 100
    assert await _state(container, shop) == (0, 300, True)


async def test_reserve_then_capture_or_release_leaves_the_right_balance(container):
    shop = await add_shop(container)
    await _fund(container, shop, 50)
    sent, dropped = uuid.uuid4(), uuid.uuid4()
    async with container.uow.for_shop(shop.id) as uow:
        await DebitWallet()(uow, message_id=sent, credits=10, price_version="v1")
        await DebitWallet()(uow, message_id=dropped, credits=7, price_version="v1")
        await CaptureDebit()(uow, message_id=sent, credits=10)
        await ReleaseDebit()(uow, message_id=dropped, credits=7, reason="invalid number")
        await uow.commit()
    assert await _state(container, shop) == (40, 0, True)


async def test_replaying_any_reference_changes_nothing_and_refunds_are_idempotent(container):
    shop = await add_shop(container)
    await _fund(container, shop, 50)
    message = uuid.uuid4()
    for _ in range(2):
        async with container.uow.for_shop(shop.id) as uow:
            await DebitWallet()(uow, message_id=message, credits=10, price_version="v1")
            await CaptureDebit()(uow, message_id=message, credits=10)
            await RefundMessage()(uow, message_id=message, credits=10, reason="undelivered")
            await uow.commit()
    async with container.uow.for_shop(shop.id) as uow:
        await TopUpWallet()(uow, credits=5, reference="purchase-1", source="test")
        assert await TopUpWallet()(uow, credits=5, reference="purchase-1", source="test") is None
        await uow.commit()
    assert await _state(container, shop) == (55, 0, True)


async def test_trial_credits_are_granted_once_per_shop(container):
    shop = await add_shop(container)
    async with container.uow.for_shop(shop.id) as uow:
        for _ in range(3):
            await GrantCredits()(
                uow, credits=100, reference="grant:trial", reason="trial", source="install"
            )
        await uow.commit()
    assert await _state(container, shop) == (100, 0, True)


async def test_the_database_itself_refuses_negative_balances_and_ledger_edits(container):
    shop = await add_shop(container)
    await _fund(container, shop, 5)
    async with container.uow.for_shop(shop.id) as uow:
        with pytest.raises(DBAPIError, match="ck_wallets_balance_not_negative"):
            await uow.session.execute(text("UPDATE wallets SET balance = -1"))
    async with container.uow.for_shop(shop.id) as uow:
        with pytest.raises(DBAPIError, match="permission denied"):
            await uow.session.execute(text("UPDATE wallet_transactions SET balance_delta = 999"))


async def test_shop_a_cannot_read_or_move_shop_b_wallet(container):
    shop_a, shop_b = await add_shop(container), await add_shop(container)
    await _fund(container, shop_b, 100)
    async with container.uow.for_shop(shop_a.id) as uow:
        assert await uow.wallet.history(limit=10) == []
        moved = await uow.session.execute(
            text("UPDATE wallets SET balance = 0 WHERE shop_id = :b"), {"b": shop_b.id}
        )
        seen = await uow.session.scalar(text("SELECT count(*) FROM wallet_transactions"))
    assert moved.rowcount == 0 and seen == 0
    assert await _state(container, shop_b) == (100, 0, True)


async def test_wallet_cli_tops_up_once_grants_lists_and_verifies(container, database_url, data_dir):
    shop = await add_shop(container)
    env = child_env(**make_environ(data_dir), DATABASE_URL=database_url)

    def cli(*args: str) -> str:
        result = subprocess.run(
            blossom("wallet", *args, "--shop", shop.domain),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "balance now 300" in cli("topup", "--credits", "300", "--reference", "inv-1")
    assert "already recorded" in cli("topup", "--credits", "300", "--reference", "inv-1")
    goodwill = ("grant", "--credits", "50", "--reason", "support goodwill", "--reference", "T-9")
    assert "balance now 350" in cli(*goodwill)
    assert "already recorded" in cli(*goodwill), "a retried grant with its ticket grants once"
    assert "support goodwill" in cli("ledger")
    assert "matches its ledger" in cli("verify")
    assert "balance 350" in cli("balance")


def _counted() -> tuple[float, float]:
    reserved = REGISTRY.get_sample_value("blossom_wallet_debits_credits_total", {"kind": "reserve"})
    low = REGISTRY.get_sample_value("blossom_wallet_low_balance_total")
    return reserved or 0.0, low or 0.0


async def test_debits_and_the_low_balance_signal_are_counted_once_committed(container):
    shop = await add_shop(container)
    await _fund(container, shop, 1_010)  # 10 above the default threshold of 1000
    before = _counted()
    async with container.uow.for_shop(shop.id) as uow:
        await DebitWallet()(uow, message_id=uuid.uuid4(), credits=20, price_version="test")
        # Not committed: rolled back, so nothing was spent and nothing ran low.
    assert _counted() == before

    assert await _reserve(container, shop, 20)

    assert _counted() == (before[0] + 20, before[1] + 1)
