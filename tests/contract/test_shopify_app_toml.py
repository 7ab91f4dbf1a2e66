"""shopify.app.toml declares exactly the topics and scopes the code relies on."""

from __future__ import annotations

import tomllib

from domain.events import COMPLIANCE_TOPICS, SUBSCRIBED_TOPICS
from infrastructure.settings import DEFAULT_SCOPES
from tests.support.processes import REPO


def test_app_toml_subscribes_the_same_topics_scopes_and_compliance_topics():
    config = tomllib.loads((REPO / "shopify.app.toml").read_text())
    subscriptions = config["webhooks"]["subscriptions"]
    topics = {t for s in subscriptions for t in s.get("topics", [])}
    compliance = {t for s in subscriptions for t in s.get("compliance_topics", [])}
    assert topics == SUBSCRIBED_TOPICS
    assert compliance == COMPLIANCE_TOPICS
    assert {s["uri"] for s in subscriptions} == {"/webhooks/shopify"}
    assert config["access_scopes"]["scopes"] == DEFAULT_SCOPES
