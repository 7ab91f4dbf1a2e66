"""Inbound keywords (contract sms.md §3): what a reply to one of our texts asks for.

Getting opt-outs wrong is the expensive direction: a text after a STOP is a violation, so
an opt-out is recognised generously (any case, punctuation, accents, the shop's localized
words, a STOP standing alone in a longer reply, and clear wording such as "please stop
texting me", which US rules require honouring since April 2025), while the other keywords
must be the whole reply. Everything is compared on `normalize`d text, so configuring
"ARRÊT" or "arret" for a shop means the same thing.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable

# Normalised keyword lists (OPT-OUT arrives as "OPT OUT": the hyphen is punctuation).
OPT_OUT_WORDS = frozenset(
    {
        "STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE",
        "OPTOUT", "OPT OUT", "REMOVE",
    }
)  # fmt: skip
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
CONFIRM_WORDS = frozenset({"Y", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})

# Opt-out words that mean nothing else in a reply to a marketing text, so they count even
# as one sentence of a longer message ("STOP. Who is this?"). CANCEL, END and REMOVE are
# left out: "Cancel, I ordered the wrong size" is about an order.
_STANDALONE_OPT_OUT = frozenset(
    {"STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "UNSUB", "OPTOUT", "OPT OUT", "REVOKE"}
)

# Courtesy words that do not change what a one-keyword reply asks ("Stop please", "HELP ME",
# "yes thanks"). A CANCEL with courtesy is still not an opt-out: see above.
_COURTESY = frozenset(
    {"PLEASE", "PLS", "PLZ", "KINDLY", "NOW", "THANKS", "THANK", "YOU", "THX", "TY", "ME"}
)

# Removed rather than turned into a space, so that "don't" becomes "DONT", not "DON T".
_APOSTROPHES = str.maketrans(dict.fromkeys("'\u2018\u2019\u02bc\u02b9\u0060\u00b4\u2032"))

# Where a longer reply splits into sentences: end punctuation, commas, line breaks and a
# dash between spaces ("STOP - wrong person"). A hyphen inside a word (OPT-OUT) does not.
_CLAUSE_BREAK = re.compile(r"[.!?,;:\n\r\u3002\uff01\uff1f]+|\s[-\u2013\u2014]+\s")


class Keyword(enum.StrEnum):
    OPT_OUT = enum.auto()
    OPT_IN = enum.auto()
    CONFIRM = enum.auto()  # YES / Y: confirms a pending double opt-in
    HELP = enum.auto()
    NONE = enum.auto()


def normalize(text: str) -> str:
    """Upper-case letters and digits of any script, single-spaced, without accents or
    punctuation: "  Arrêt! " -> "ARRET", "στόπ" -> "ΣΤΟΠ", "Opt-out" -> "OPT OUT"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    kept = "".join(
        char if unicodedata.category(char)[0] in "LN" else " "
        for char in decomposed
        if not unicodedata.combining(char)
    )
    return " ".join(kept.casefold().upper().split())


# Clear opt-out wording inside a longer message, matched on normalised text. A "stop" or a
# "don't" only counts with what it is about (texts, messages, me), so "when will my order
# stop being delayed?" and "Don't stop the sale!" pass; only UNSUBSCRIBE and OPT OUT, which
# mean nothing else here, count on their own.
_MESSAGES = r"(?:TEXTS?|TXTS?|TEXT MESSAGES?|MESSAGES?|MSGS?|SMS|SPAM|PROMOS?|ADS|MARKETING)"
_DETERMINER = r"(?:(?:THE|THESE|THOSE|THIS|YOUR|ALL|ANY|MORE|OF) )*"
# Texts in general, not one text or a promo code: "cancel the text I sent" is about a text.
_PLURAL_MESSAGES = r"(?:TEXTS|TXTS|TEXT MESSAGES|MESSAGES|MSGS|SMS|SPAM|ADS|MARKETING)"
_COURTEOUS_END = r"(?: (?:PLEASE|PLS|PLZ|NOW|THANKS|THANK YOU|THX))*$"

# Asks that a negation just before them reverses: "please don't stop texting me",
# "I don't want to unsubscribe".
_NEGATABLE_INTENT = tuple(
    re.compile(pattern)
    for pattern in (
        # stop texting me / quit messaging / stop sending me texts / stop all these messages
        r"\b(?:STOP|QUIT|CEASE) (?:ALL )?(?:TEXTING|TXTING|MESSAGING|CONTACTING|SPAMMING)\b",
        r"\b(?:STOP|QUIT|CEASE) (?:SENDING |GETTING |RECEIVING )?(?:ME )?"
        rf"{_DETERMINER}{_MESSAGES}\b",
        # stop sending me these (and nothing else: "stop sending me the wrong size" is not)
        r"\bSTOP (?:SENDING|GETTING|RECEIVING)(?: ME)?"
        rf"(?: THESE| THIS| THEM| THOSE| STUFF| ANYTHING)?{_COURTEOUS_END}",
        # unsubscribe (how do I unsubscribe, unsubscribe me), opt (me) out, remove me, ...
        r"\b(?:UNSUBSCRIBE|OPT (?:ME )?OUT|OPTOUT)\b",
        r"\b(?:UNSUB|REMOVE|DELETE) (?:ME|MY NUMBER|MY PHONE NUMBER|THIS NUMBER)\b",
        r"\bTAKE (?:ME|MY NUMBER|MY PHONE NUMBER|THIS NUMBER) OFF\b",
        # I want to be removed / I want off this list / cancel these texts
        r"\bWANT (?:TO BE REMOVED|TO BE TAKEN OFF|OFF (?:THIS|THE|YOUR) LIST)\b",
        rf"\bCANCEL (?:ALL |THESE |THOSE |YOUR |THE )*{_PLURAL_MESSAGES}{_COURTEOUS_END}",
    )
)
# A negation among the three words before an ask ("don't want to unsubscribe").
_NEGATIONS = frozenset({"DONT", "NOT", "NEVER", "DOESNT"})
_NEGATION_REACH = 3

# Asks that carry their own negation, or need none.
_INTENT = tuple(
    re.compile(pattern)
    for pattern in (
        # don't text me / do not contact me anymore / never message this number again
        r"\b(?:DONT|DO NOT|NEVER)(?: EVER)? (?:TEXT|TXT|MESSAGE|MSG|CONTACT|SPAM|SMS) "
        r"(?:ME|US|THIS NUMBER)\b",
        r"\b(?:DONT|DO NOT|NEVER)(?: EVER)? SEND (?:ME|THIS NUMBER) "
        rf"(?:ANY ?MORE |ANY |MORE )?{_DETERMINER}{_MESSAGES}\b",
        # I don't want these texts anymore / I do not want to receive any more messages
        r"\b(?:DONT|DO NOT) WANT (?:TO (?:RECEIVE|GET) )?(?:ANY ?MORE |ANY |MORE )?"
        rf"{_DETERMINER}{_PLURAL_MESSAGES}(?: ANY ?MORE)?{_COURTEOUS_END}",
        # no more texts (only as the ask itself: "I got no more texts" wants them), and
        # "no texts" only as the whole reply
        rf"^(?:PLEASE )?NO MORE {_DETERMINER}{_MESSAGES}\b",
        rf"^(?:PLEASE )?NO {_DETERMINER}{_MESSAGES}{_COURTEOUS_END}",
        rf"^(?:PLEASE )?ENOUGH (?:WITH )?{_DETERMINER}{_MESSAGES}{_COURTEOUS_END}",
        rf"^STOP IT{_COURTEOUS_END}",
        r"\bLEAVE ME ALONE\b",
        # a threat is a clear ask too: "if you don't stop I'll report you"
        r"\bIF (?:YOU|U) (?:DONT|DO NOT) STOP\b",
    )
)


# Replies that say, as a sentence of their own, that these texts reach the wrong person or
# an unwilling one: "Sorry, wrong number.", "Not interested". The FCC's revocation rule
# takes any reasonable means; inside a longer sentence ("I typed the wrong number at
# checkout") they are only flagged for review.
_CLAUSE_INTENT = re.compile(
    rf"^(?:SORRY )?(?:(?:YOU HAVE|YOUVE GOT|YOU GOT|THIS IS|ITS) (?:THE |A )?)?"
    rf"WRONG (?:NUMBER|PERSON){_COURTEOUS_END}"
    rf"|^(?:IM |I AM )?(?:NOT|NO LONGER) INTERESTED{_COURTEOUS_END}"
)
_TALK_OF_LEAVING = frozenset({"WRONG NUMBER", "WRONG PERSON", "NOT INTERESTED"})


def _asks_to_stop(normalized: str) -> bool:
    if any(pattern.search(normalized) for pattern in _INTENT):
        return True
    for pattern in _NEGATABLE_INTENT:
        for match in pattern.finditer(normalized):
            before = normalized[: match.start()].split()[-_NEGATION_REACH:]
            if _NEGATIONS.isdisjoint(before):
                return True
    return False


def _without_courtesy(normalized: str) -> str:
    """Drop courtesy words and repeats: "STOP STOP please" -> "STOP"."""
    kept: list[str] = []
    for word in normalized.split():
        if word not in _COURTESY and (not kept or kept[-1] != word):
            kept.append(word)
    return " ".join(kept)


def _normalized_words(words: Iterable[str]) -> frozenset[str]:
    return frozenset(filter(None, (normalize(word) for word in words)))


def opt_out_intent(text: str, extra_opt_out: Iterable[str] = ()) -> bool:
    """Whether a longer reply clearly asks to stop: an unambiguous opt-out word as a
    sentence of its own ("STOP. Who is this?"), or wording such as "please stop texting
    me". Exact one-keyword replies are `classify`'s business; this covers the rest."""
    standalone = _STANDALONE_OPT_OUT | _normalized_words(extra_opt_out)
    clauses = (normalize(clause) for clause in _CLAUSE_BREAK.split(text))
    if any(clause in standalone or _CLAUSE_INTENT.match(clause) for clause in clauses):
        return True
    return _asks_to_stop(normalize(text))


def mentions_opt_out(text: str, extra_opt_out: Iterable[str] = ()) -> bool:
    """Whether an opt-out word, or talk of a wrong number or of no interest, occurs anywhere
    ("Don't stop the sale!"): not an opt-out by itself, but worth flagging for a human to
    read when `classify` says NONE."""
    normalized = f" {normalize(text)} "
    words = OPT_OUT_WORDS | _TALK_OF_LEAVING | _normalized_words(extra_opt_out)
    return any(f" {word} " in normalized for word in words)


def classify(text: str, extra_opt_out: Iterable[str] = ()) -> Keyword:
    """What an inbound reply asks for. `extra_opt_out` holds the shop's localized opt-out
    words ("ΣΤΟΠ", "ARRÊT"), compared after the same normalisation.

    A one-keyword reply (courtesy words aside: "Stop please", "yes thanks") gives its
    keyword; anything else is OPT_OUT when `opt_out_intent` finds a clear ask to stop,
    else NONE. CONFIRM (Y/YES) confirms a pending double opt-in; whether YES also
    re-subscribes an opted-out contact (sms.md §3) is the caller's decision.
    """
    extra = _normalized_words(extra_opt_out)
    keyword = _bare_keyword(text, extra)
    if keyword is not None:
        return keyword
    return Keyword.OPT_OUT if opt_out_intent(text, extra) else Keyword.NONE


def needs_review(text: str, extra_opt_out: Iterable[str] = ()) -> bool:
    """Whether the merchant should read this reply: it is no bare keyword, yet it talks of
    opting out. Either `classify` took it as an opt-out from its wording ("please stop
    texting me"), which a person may want to confirm, or it uses an opt-out word that did
    not amount to one ("Don't stop the sale!", "cancel my subscription")."""
    extra = _normalized_words(extra_opt_out)
    if _bare_keyword(text, extra) is not None:
        return False
    return opt_out_intent(text, extra) or mentions_opt_out(text, extra)


def _bare_keyword(text: str, extra: frozenset[str]) -> Keyword | None:
    """The keyword a one-keyword reply gives, courtesy words aside; None for anything else."""
    normalized = normalize(text)
    polite = _without_courtesy(normalized)
    if normalized in OPT_OUT_WORDS or normalized in extra:
        return Keyword.OPT_OUT
    if polite != "CANCEL" and (polite in OPT_OUT_WORDS or polite in extra):
        return Keyword.OPT_OUT
    for words, keyword in (
        (OPT_IN_WORDS, Keyword.OPT_IN),
        (CONFIRM_WORDS, Keyword.CONFIRM),
        (HELP_WORDS, Keyword.HELP),
    ):
        if normalized in words or polite in words:
            return keyword
    return None
