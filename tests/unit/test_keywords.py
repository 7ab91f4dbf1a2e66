"""Inbound keywords (contract sms.md §3): normalisation, keywords, clear opt-out wording."""

# Replies are written as people type them, curly apostrophes and Greek included.
# ruff: noqa: RUF001

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.keywords import (
    CONFIRM_WORDS,
    HELP_WORDS,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    Keyword,
    classify,
    mentions_opt_out,
    needs_review,
    normalize,
    opt_out_intent,
)
from domain.messages import DEFAULT_HELP, fill_reply
from domain.messaging import Encoding, segment_text

SHOP_WORDS = ("ΣΤΟΠ", "ARRÊT")


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("  Stop. ", "STOP"),
        ("STOP!!", "STOP"),
        ("Opt-Out", "OPT OUT"),
        ("opt   out\n", "OPT OUT"),
        ("Arrêt", "ARRET"),
        ("ARRÊT", "ARRET"),
        ("στόπ", "ΣΤΟΠ"),
        ("Στοπ!", "ΣΤΟΠ"),
        ("ΣΤΟΠ", "ΣΤΟΠ"),
        ("Ｓｔｏｐ", "STOP"),  # full-width
        ("Straße", "STRASSE"),
        ("don’t text me", "DONT TEXT ME"),
        ("STOP 😡", "STOP"),
        ("", ""),
        ("?!", ""),
    ],
)
def test_normalize(text: str, normalized: str) -> None:
    assert normalize(text) == normalized


@given(st.text())
def test_normalize_is_idempotent(text: str) -> None:
    assert normalize(normalize(text)) == normalize(text)


@pytest.mark.parametrize(
    ("words", "keyword"),
    [
        (OPT_OUT_WORDS, Keyword.OPT_OUT),
        (OPT_IN_WORDS, Keyword.OPT_IN),
        (CONFIRM_WORDS, Keyword.CONFIRM),
        (HELP_WORDS, Keyword.HELP),
    ],
)
def test_every_listed_keyword(words: frozenset[str], keyword: Keyword) -> None:
    for word in words:
        assert classify(word) is keyword, word
        assert classify(word.lower()) is keyword, word
        assert classify(f" {word.title()}! ") is keyword, word


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "Stop.",
        " stop ",
        "STOP!!",
        "Stop all",
        "stopall",
        "Unsubscribe",
        "cancel",
        "End",
        "quit",
        "Revoke",
        "OPTOUT",
        "opt out",
        "OPT-OUT",
        "Opt-out.",
        "remove",
        "Stop please",
        "Kindly stop",
        "STOP STOP STOP",
        "stop now!",
        "Remove me",
        "Ｓｔｏｐ",
        "STOP 🛑",
    ],
)
def test_opt_out_keywords(text: str) -> None:
    assert classify(text) is Keyword.OPT_OUT


@pytest.mark.parametrize("text", ["Arrêt", "ARRET", "arret !", "ΣΤΟΠ", "στοπ", "Στόπ."])
def test_shop_localized_opt_out_words(text: str) -> None:
    assert classify(text, SHOP_WORDS) is Keyword.OPT_OUT
    # Without the shop's words, they mean nothing.
    assert classify(text) is Keyword.NONE


def test_localized_words_are_normalized_the_same_way() -> None:
    assert classify("ARRET", ["arrêt"]) is Keyword.OPT_OUT
    assert classify("Arrêt. Merci", ["arrêt"]) is Keyword.OPT_OUT
    assert classify("STOP", ["", "  "]) is Keyword.OPT_OUT


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("START", Keyword.OPT_IN),
        ("start", Keyword.OPT_IN),
        ("Unstop", Keyword.OPT_IN),
        ("Y", Keyword.CONFIRM),
        ("y", Keyword.CONFIRM),
        ("YES", Keyword.CONFIRM),
        ("yes!", Keyword.CONFIRM),
        ("Yes please", Keyword.CONFIRM),
        ("HELP", Keyword.HELP),
        ("help?", Keyword.HELP),
        ("Info", Keyword.HELP),
        ("help me", Keyword.HELP),
    ],
)
def test_other_keywords(text: str, keyword: Keyword) -> None:
    assert classify(text) is keyword


@pytest.mark.parametrize(
    "text",
    [
        "please stop texting me",
        "Please stop texting me!",
        "stop texting",
        "stop messaging me",
        "STOP SENDING ME TEXTS",
        "stop sending me these",
        "Stop all these messages",
        "stop the spam",
        "quit texting me",
        "unsubscribe me",
        "Unsubscribe me please",
        "how do I unsubscribe?",
        "I want to opt out",
        "please opt me out",
        "remove me from this list",
        "Remove my number",
        "take me off your list",
        "don't text me",
        "Don’t text me again",
        "do not text me anymore",
        "never text this number again",
        "do not send me any more messages",
        "No more texts please",
        "leave me alone",
        "STOP. Who is this?",
        "Stop - I never signed up",
        "wrong person, STOP",
        "If you don't stop texting me I will report you",
        "Why won't you stop texting me",
        "I don't know how to unsubscribe",
        "I don't want these texts anymore",
        "I do not want to receive texts",
        "I dont want any more messages",
        "No texts",
        "no texts please",
        "Enough with the texts",
        "I want to be removed",
        "I want off this list",
        "unsub",
        "Unsub. Thanks",
        "cancel these texts",
        "Stop it",
        "Wrong number",
        "Sorry, wrong number.",
        "sorry wrong number",
        "You have the wrong number",
        "Wrong number. Who is this?",
        "Not interested",
        "I'm not interested, thanks",
        "no longer interested",
    ],
)
def test_clear_opt_out_wording(text: str) -> None:
    assert classify(text) is Keyword.OPT_OUT
    assert opt_out_intent(text)


@pytest.mark.parametrize(
    "text",
    [
        "when will my order stop being delayed?",
        "Don't stop the sale!",
        "please don't stop texting me, I love the deals",
        "I don't want to unsubscribe",
        "cancel my order",
        "Cancel, I ordered the wrong size",
        "stop sending me the wrong size!",
        "Can you stop my order?",
        "I'll stop by the store tomorrow",
        "where is the bus stop",
        "When does the sale end?",
        "remove the blue one from my cart",
        "I got no more texts about my order",
        "No texts arrived about my order yet",
        "I don't want to be removed",
        "I don't want to cancel these texts",
        "cancel my subscription",  # may be the shop's product: flagged for a human instead
        "I don't want the blue one",
        "I didn't get enough texts about my order",
        "I haven't had enough messages from you lately",
        "Can you cancel the text I sent earlier? Wrong address",
        "Cancel this message, wrong size",
        "Can I cancel promo code SAVE10?",
        "I don't want the text to go to my husband",
        "I don't want these texts to stop",
        "The text on your site is broken",
        "thanks!",
        "Hi, is this in stock?",
        "yes stop",  # contradictory: a human should read it
        "",
        "   ",
        "🛑",
        "I typed the wrong number at checkout",
        "Is this the wrong number for support?",
        "Not interested in the blue one, do you have it in red?",
    ],
)
def test_ordinary_messages_are_not_opt_outs(text: str) -> None:
    assert classify(text) is Keyword.NONE
    assert not opt_out_intent(text)


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("Don't stop the sale!", True),
        ("When does the sale end?", True),
        ("cancel my order", True),
        ("Hi, is this in stock?", False),
        ("Unstoppable deals", False),
    ],
)
def test_mentions_opt_out_flags_for_review(text: str, mentions: bool) -> None:
    assert mentions_opt_out(text) is mentions


def test_mentions_opt_out_includes_shop_words() -> None:
    assert mentions_opt_out("je veux un arrêt", SHOP_WORDS)
    assert not mentions_opt_out("je veux un arrêt")


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        # Honoured as an opt-out from its wording: a person may want to see it.
        ("please stop texting me", True),
        ("STOP. Who is this?", True),
        ("leave me alone", True),
        # An opt-out word that did not amount to an opt-out.
        ("Don't stop the sale!", True),
        ("cancel my subscription", True),
        ("Cancel please", True),
        ("yes stop", True),
        ("Not interested", True),
        ("I typed the wrong number at checkout", True),
        ("Not interested in the blue one, do you have it in red?", True),
        # Bare keywords say what they mean; the rest is ordinary chat.
        ("STOP", False),
        ("Stop please", False),
        ("cancel", False),
        ("HELP", False),
        ("yes", False),
        ("Hi, is this in stock?", False),
        ("Unstoppable deals", False),
    ],
)
def test_needs_review_flags_opt_out_talk_that_is_no_bare_keyword(text: str, flagged: bool) -> None:
    assert needs_review(text) is flagged


def test_needs_review_knows_the_shop_words() -> None:
    assert needs_review("je veux un arrêt", SHOP_WORDS)
    assert not needs_review("ARRÊT", SHOP_WORDS)
    assert not needs_review("je veux un arrêt")


def test_keyword_values_are_stable_strings() -> None:
    assert [k.value for k in Keyword] == ["opt_out", "opt_in", "confirm", "help", "none"]


@pytest.mark.parametrize(
    "contact", ["support@blossom-boutique.com", "blossom-boutique-store.myshopify.com"]
)
def test_help_reply_names_brand_contact_and_opt_out_in_one_gsm7_segment(contact: str) -> None:
    reply = fill_reply(DEFAULT_HELP, shop="Blossom Boutique", contact=contact)
    assert reply.startswith("Blossom Boutique:") and contact in reply and "STOP" in reply
    info = segment_text(reply)
    assert (info.encoding, info.segments) == (Encoding.GSM7, 1)


def test_fill_reply_does_not_expand_placeholders_inside_values() -> None:
    reply = fill_reply("{shop} / {contact}", shop="{contact}", contact="{shop}")
    assert reply == "{contact} / {shop}"
