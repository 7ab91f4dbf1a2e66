"""Wallet ledger entries: money moves in whole, bounded amounts."""

from __future__ import annotations

import pytest

from domain.billing import LARGEST_ENTRY, EntryKind, adjustment, credit
from domain.errors import InvalidValue


def test_a_credit_up_to_the_largest_entry_is_accepted():
    entry = credit(EntryKind.TOPUP, LARGEST_ENTRY, "topup:x", "credits purchased", "cli:ops")
    assert entry.balance_delta == LARGEST_ENTRY


@pytest.mark.parametrize("credits", [0, -1, LARGEST_ENTRY + 1, 2**63, True])
def test_a_credit_outside_the_range_is_refused(credits):
    with pytest.raises(InvalidValue):
        credit(EntryKind.GRANT, credits, "grant:x", "goodwill", "cli:ops")


@pytest.mark.parametrize("credits", [0, LARGEST_ENTRY + 1, -LARGEST_ENTRY - 1])
def test_an_adjustment_outside_the_range_is_refused(credits):
    with pytest.raises(InvalidValue):
        adjustment(credits, "adjust:x", "correction", "cli:ops")
