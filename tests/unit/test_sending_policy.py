"""SendingPolicy: a shop's sending rules read from its settings, and the gates they drive."""

from __future__ import annotations

from datetime import timedelta

from domain.consent import ConsentState
from domain.messages import (
    MessageCategory,
    MessageStatus,
    Recipient,
    SendingPolicy,
    keeps_quiet_hours,
    marketing_limits,
)

TRANSACTIONAL = MessageCategory.TRANSACTIONAL
DAY = timedelta(hours=24)


def _recipient(phone: str, country: str) -> Recipient:
    return Recipient(None, phone, country, "UTC", ConsentState.SUBSCRIBED)


def _caps(policy: SendingPolicy, recipient: Recipient) -> list[tuple[int, timedelta]]:
    return [
        (limit.count, limit.window)
        for limit in marketing_limits(policy, recipient)
        if limit.status is MessageStatus.BLOCKED_CAP
    ]


def test_order_updates_keep_quiet_hours_until_the_shop_opts_in() -> None:
    opted_in = {"messaging": {"transactional_bypass_quiet_hours": True}}

    assert keeps_quiet_hours(TRANSACTIONAL, SendingPolicy())
    assert keeps_quiet_hours(TRANSACTIONAL, SendingPolicy.from_settings({}))
    assert not keeps_quiet_hours(TRANSACTIONAL, SendingPolicy.from_settings(opted_in))


def test_a_state_cap_holds_whatever_cap_the_shop_set() -> None:
    generous = SendingPolicy.from_settings({"messaging": {"cap_count": 10, "cap_window_hours": 1}})
    maryland = _recipient("+12405550123", "US")  # 240: a Maryland area code

    assert _caps(generous, maryland) == [(10, timedelta(hours=1)), (3, DAY)]


def test_outside_capped_states_the_shop_cap_alone_applies() -> None:
    generous = SendingPolicy.from_settings({"messaging": {"cap_count": 10}})

    assert _caps(generous, _recipient("+12125550123", "US")) == [(10, DAY)]  # New York
    assert _caps(generous, _recipient("+447700900123", "GB")) == [(10, DAY)]
