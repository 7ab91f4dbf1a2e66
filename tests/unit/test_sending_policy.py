"""SendingPolicy: a shop's sending rules read from its settings, and the gates they drive."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.consent import ConsentState
from domain.errors import InvalidValue
from domain.messages import (
    SMART_SENDING_MAX_HOURS,
    MessageCategory,
    MessageStatus,
    Recipient,
    SendingPolicy,
    keeps_quiet_hours,
    marketing_limits,
)

TRANSACTIONAL = MessageCategory.TRANSACTIONAL
CAP, SKIP = MessageStatus.BLOCKED_CAP, MessageStatus.SKIPPED
DAY = timedelta(hours=24)


def _policy(**messaging: object) -> SendingPolicy:
    return SendingPolicy.from_settings({"messaging": messaging})


def _recipient(phone: str, country: str) -> Recipient:
    return Recipient(None, phone, country, ("UTC",), ConsentState.SUBSCRIBED)


LONDON = _recipient("+447700900123", "GB")


def _limits(
    policy: SendingPolicy, recipient: Recipient, status: MessageStatus
) -> list[tuple[int, timedelta]]:
    return [
        (limit.count, limit.window)
        for limit in marketing_limits(policy, recipient)
        if limit.status is status
    ]


def test_order_updates_keep_quiet_hours_until_the_shop_opts_in() -> None:
    assert keeps_quiet_hours(TRANSACTIONAL, SendingPolicy())
    assert keeps_quiet_hours(TRANSACTIONAL, _policy())
    assert not keeps_quiet_hours(TRANSACTIONAL, _policy(transactional_bypass_quiet_hours=True))


def test_a_state_cap_holds_whatever_cap_the_shop_set() -> None:
    generous = _policy(cap_count=10, cap_window_hours=1)
    maryland = _recipient("+12405550123", "US")  # 240: a Maryland area code

    assert _limits(generous, maryland, CAP) == [(10, timedelta(hours=1)), (3, DAY)]


def test_outside_capped_states_the_shop_cap_alone_applies() -> None:
    generous = _policy(cap_count=10)

    assert _limits(generous, _recipient("+12125550123", "US"), CAP) == [(10, DAY)]  # New York
    assert _limits(generous, LONDON, CAP) == [(10, DAY)]


def test_smart_sending_keeps_marketing_texts_24_hours_apart_by_default() -> None:
    assert _limits(SendingPolicy(), LONDON, SKIP) == [(1, DAY)]
    assert _limits(_policy(), LONDON, SKIP) == [(1, DAY)]


def test_a_shop_may_shorten_smart_sending_or_turn_it_off() -> None:
    assert _limits(_policy(smart_sending_hours=2), LONDON, SKIP) == [(1, timedelta(hours=2))]
    assert _limits(_policy(smart_sending_hours=0), LONDON, SKIP) == []


@pytest.mark.parametrize("hours", [-1, SMART_SENDING_MAX_HOURS + 1, True, "24", 1.5])
def test_smart_sending_hours_outside_zero_to_a_week_are_refused(hours: object) -> None:
    with pytest.raises(InvalidValue, match="smart_sending_hours"):
        _policy(smart_sending_hours=hours)


def test_a_skipped_text_is_final_like_a_blocked_one() -> None:
    assert MessageStatus.SKIPPED.final and MessageStatus.SKIPPED.blocked
