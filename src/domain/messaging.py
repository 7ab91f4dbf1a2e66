"""SMS encoding and segmentation (contract sms.md §2), shared by billing and the pipeline.

Mitto returns no segment count and no price (sms.md §1), so we count segments ourselves,
and the count must match what the network bills: a message is GSM-7 only when every
character is in the GSM 03.38 tables, otherwise the whole message goes as UCS-2 (UTF-16).
Replacing the characters that forced UCS-2 is the merchant's choice, never silent: the
pipeline sends the text as written, and `gsm7_replacement` only builds a suggestion.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from domain.errors import InvalidValue

# GSM 03.38 default alphabet (3GPP TS 23.038 §6.2.1), indexed by septet value, eight rows of
# sixteen. 0x1B is ESC, the escape into the extension table: a placeholder, not a character.
_ESC = "\x1b"
GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM7_BASIC = frozenset(GSM7_BASIC_TABLE) - {_ESC}
# The extension table (TS 23.038 §6.2.1.1): each is sent as ESC + one septet, so two septets.
# Form feed (0x0A) is the page break; the table's other codes (CR2, single shift) are controls.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


class Encoding(StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


# One SMS carries 140 octets: 160 septets or 70 UTF-16 code units.
SINGLE_SEGMENT_UNITS = {Encoding.GSM7: 160, Encoding.UCS2: 70}
# A concatenated part spends 6 octets on the user-data header (48 bits, 7 septets rounded
# up, or 3 UTF-16 units), so 153 septets or 67 code units remain.
MULTI_SEGMENT_UNITS = {Encoding.GSM7: 153, Encoding.UCS2: 67}


@dataclass(frozen=True, slots=True)
class Culprit:
    """A character that forced UCS-2, how often it occurs, and its GSM-7 stand-in if any.

    `replacement` is "" for invisible characters (zero-width space, soft hyphen, a stray
    combining accent) that can simply be dropped, and None when nothing in GSM-7 is close.
    """

    char: str
    count: int
    replacement: str | None


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How a text travels: `units` are septets (GSM-7) or UTF-16 code units (UCS-2);
    `per_segment` is the capacity that applied (160/70 for one segment, 153/67 when
    concatenated); `culprits` is empty for GSM-7 and in order of first appearance."""

    encoding: Encoding
    units: int
    segments: int
    per_segment: int
    culprits: tuple[Culprit, ...]


# Look-alike punctuation that phones and word processors insert ("smart quotes", dashes),
# the usual reason a merchant's text turns UCS-2 and costs two or three times as much.
_PUNCTUATION_REPLACEMENTS = {
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u00b4\u0060\u02b9\u02bc\u2039\u203a", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\u02ba\u02dd", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    "\u2026": "...",
    "\t": " ",
    "\u2028": "\n",  # line separator
    "\u2029": "\n",  # paragraph separator
    # Invisible characters pasted along with text; dropping them changes nothing visible.
    **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff", ""),
}

# Greek capitals that GSM-7 lacks look like Latin ones; Greek phones send Greek this way
# (in capitals, accents dropped), so it is the stand-in a Greek merchant expects.
_GREEK_LOOKALIKES = str.maketrans("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX")  # noqa: RUF001


GSM7 = GSM7_BASIC | GSM7_EXTENSION


def _is_gsm7(text: str) -> bool:
    # A set comparison runs in C: this is on the path of every message queued.
    return GSM7.issuperset(text)


def _letter_replacement(char: str) -> str | None:
    """A letter or digit without its accents or compatibility form (ç → c, ﬁ → fi)."""
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    if unicodedata.name(char, "").startswith("GREEK"):
        base = base.upper().translate(_GREEK_LOOKALIKES)
    return base if base and _is_gsm7(base) else None


def replacement_for(char: str) -> str | None:
    """The GSM-7 stand-in for one non-GSM-7 character, or None when there is none."""
    if char in _PUNCTUATION_REPLACEMENTS:
        return _PUNCTUATION_REPLACEMENTS[char]
    category = unicodedata.category(char)
    if category == "Zs":  # no-break, thin, em, ideographic... spaces
        return " "
    if category == "Mn":  # a combining accent left over after composing
        return ""
    if category[0] in "LN":
        return _letter_replacement(char)
    return None


def _culprits(text: str) -> tuple[Culprit, ...]:
    if _is_gsm7(text):
        return ()
    counts = Counter(char for char in text if char not in GSM7)  # keeps first-seen order
    return tuple(Culprit(char, count, replacement_for(char)) for char, count in counts.items())


def _unit_costs(text: str, encoding: Encoding) -> list[int]:
    """Per character: septets (escape pairs cost 2) or UTF-16 units (surrogate pairs cost 2).

    A segment boundary never splits one character's units, so they are kept together.
    """
    if encoding is Encoding.GSM7:
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def _count_segments(costs: Iterable[int], capacity: int) -> int:
    """Fill segments greedily, moving a character that does not fit whole to the next one."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > capacity:
            segments, used = segments + 1, 0
        used += cost
    return segments


def segment_text(text: str) -> SegmentInfo:
    """Encoding, size and segment count of `text` as a real segmenter splits it.

    Empty text is refused rather than counted: Mitto rejects it (response code 3), and a
    message that cannot be sent must not be priced.
    """
    if not text:
        raise InvalidValue("message text is empty")
    culprits = _culprits(text)
    encoding = Encoding.UCS2 if culprits else Encoding.GSM7
    costs = _unit_costs(text, encoding)
    units = sum(costs)
    if units <= SINGLE_SEGMENT_UNITS[encoding]:
        return SegmentInfo(encoding, units, 1, SINGLE_SEGMENT_UNITS[encoding], culprits)
    per_segment = MULTI_SEGMENT_UNITS[encoding]
    return SegmentInfo(encoding, units, _count_segments(costs, per_segment), per_segment, culprits)


def gsm7_replacement(text: str) -> str:
    """`text` with every replaceable culprit swapped for its GSM-7 stand-in.

    For showing a merchant what the cheaper text would look like; characters without a
    stand-in (most emoji, CJK) are kept, so the result may still be UCS-2. The text is
    composed first (NFC) so a decomposed "e + accent" keeps its accent as the GSM-7 é.
    """
    composed = unicodedata.normalize("NFC", text)
    return "".join(_replace_char(char) for char in composed)


def _replace_char(char: str) -> str:
    if _is_gsm7(char):
        return char
    replacement = replacement_for(char)
    return char if replacement is None else replacement
