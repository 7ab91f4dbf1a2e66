"""SendingPolicy: a shop's sending rules read from its settings, and the gates they drive."""

from __future__ import annotations

from domain.messages import MessageCategory, SendingPolicy, keeps_quiet_hours

TRANSACTIONAL = MessageCategory.TRANSACTIONAL


def test_order_updates_keep_quiet_hours_until_the_shop_opts_in() -> None:
    opted_in = {"messaging": {"transactional_bypass_quiet_hours": True}}

    assert keeps_quiet_hours(TRANSACTIONAL, SendingPolicy())
    assert keeps_quiet_hours(TRANSACTIONAL, SendingPolicy.from_settings({}))
    assert not keeps_quiet_hours(TRANSACTIONAL, SendingPolicy.from_settings(opted_in))
