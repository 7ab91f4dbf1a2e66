"""SMS encoding and segmentation: the vectors of contract sms.md §2 and the split boundaries;
and the text that is counted, as composed from a marketing text (sms.md §6)."""

# Texts with curly quotes are written as they look: that is what the tests are about.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import pytest

from domain.errors import InvalidValue
from domain.messages import DEFAULT_FOOTER, MessageCategory, compose
from domain.messaging import (
    GSM7_BASIC,
    GSM7_BASIC_TABLE,
    GSM7_EXTENSION,
    Culprit,
    Encoding,
    SegmentInfo,
    gsm7_replacement,
    segment_text,
)

G, U = Encoding.GSM7, Encoding.UCS2


# (text, encoding, units, segments): every test vector of sms.md §2, verbatim.
CONTRACT_VECTORS = [
    ("a" * 160, G, 160, 1),
    ("a" * 161, G, 161, 2),
    ("a" * 306, G, 306, 2),
    ("a" * 307, G, 307, 3),
    ("€" * 80, G, 160, 1),
    ("€" * 81, G, 162, 2),
    ("Hi ’there’", U, 10, 1),
    ("é" * 70, G, 70, 1),
    ("ç" * 70, U, 70, 1),
    ("😀" * 35, U, 70, 1),
    ("😀" * 36, U, 72, 2),
    ("x" * 70 + "’", U, 71, 2),
]


@pytest.mark.parametrize(("text", "encoding", "units", "segments"), CONTRACT_VECTORS)
def test_contract_vectors(text: str, encoding: Encoding, units: int, segments: int) -> None:
    info = segment_text(text)
    assert (info.encoding, info.units, info.segments) == (encoding, units, segments)


def test_hi_there_reports_the_curly_quote_as_its_culprit() -> None:
    assert segment_text("Hi ’there’").culprits == (Culprit("’", 2, "'"),)


def test_lower_case_c_cedilla_is_a_culprit_but_upper_case_is_gsm7() -> None:
    assert segment_text("ç").culprits == (Culprit("ç", 1, "c"),)
    assert segment_text("Ç" * 160) == SegmentInfo(G, 160, 1, 160, ())


# --- the tables --------------------------------------------------------------------------


def test_basic_table_is_the_full_ts_23_038_alphabet() -> None:
    assert len(GSM7_BASIC_TABLE) == 128
    assert GSM7_BASIC_TABLE[0x1B] == "\x1b"  # ESC, not a character
    assert len(GSM7_BASIC) == 127
    # Spot checks at their septet positions.
    assert GSM7_BASIC_TABLE[0x00] == "@"
    assert GSM7_BASIC_TABLE[0x09] == "Ç"
    assert GSM7_BASIC_TABLE[0x10] == "Δ"
    assert GSM7_BASIC_TABLE[0x24] == "¤"
    assert GSM7_BASIC_TABLE[0x40] == "¡"
    assert GSM7_BASIC_TABLE[0x5F] == "§"
    assert GSM7_BASIC_TABLE[0x60] == "¿"
    assert GSM7_BASIC_TABLE[0x7F] == "à"
    assert set("ΔΦΓΛΩΠΨΣΘΞ") <= GSM7_BASIC


@pytest.mark.parametrize("char", [*"`ÀÁÂÃáâãêëíîïóôõúûçÊœŒ¢", "\t", "\x1b"])
def test_characters_outside_both_tables_force_ucs2(char: str) -> None:
    assert segment_text(char).encoding is U


def test_extension_table_is_exactly_ten_two_septet_characters() -> None:
    assert frozenset("\f^{}\\[~]|€") == GSM7_EXTENSION
    assert not GSM7_EXTENSION & GSM7_BASIC
    assert segment_text("\f^{}\\[~]|€").units == 20


# --- boundaries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments", "per_segment"),
    [
        ("a" * 153 * 2, G, 306, 2, 153),
        ("a" * (153 * 2 + 1), G, 307, 3, 153),
        ("a" * 153 * 3, G, 459, 3, 153),
        ("a" * (153 * 3 + 1), G, 460, 4, 153),
        ("ж" * 70, U, 70, 1, 70),
        ("ж" * 71, U, 71, 2, 67),
        ("ж" * 67 * 2, U, 134, 2, 67),
        ("ж" * (67 * 2 + 1), U, 135, 3, 67),
    ],
)
def test_153_and_67_boundaries(
    text: str, encoding: Encoding, units: int, segments: int, per_segment: int
) -> None:
    info = segment_text(text)
    assert (info.encoding, info.units, info.segments, info.per_segment) == (
        encoding,
        units,
        segments,
        per_segment,
    )


def test_single_segment_reports_single_capacity() -> None:
    assert segment_text("a").per_segment == 160
    assert segment_text("ж").per_segment == 70


def test_escape_pair_at_position_153_moves_to_the_next_segment() -> None:
    # 152 a + € would be 154 septets in part one, so € opens part two (2 + 10 septets).
    assert segment_text("a" * 152 + "€" + "a" * 10).segments == 2
    # 306 septets fit ceil(306 / 153) = 2 parts only if € could be split: part one holds
    # 152 a, part two € + 151 a (153), and the last a needs a third part.
    info = segment_text("a" * 152 + "€" + "a" * 152)
    assert (info.units, info.segments) == (306, 3)
    # The same text without the gap: € exactly filling septets 152–153 still fits.
    assert segment_text("a" * 151 + "€" + "a" * 153).segments == 2


def test_surrogate_pair_at_position_67_moves_to_the_next_segment() -> None:
    # 66 x + 😀 would be 68 units in part one, so 😀 opens part two.
    info = segment_text("x" * 66 + "😀" + "x" * 66)
    assert (info.encoding, info.units, info.segments) == (U, 134, 3)
    assert segment_text("x" * 65 + "😀" + "x" * 67).segments == 2


def test_empty_text_is_refused() -> None:
    with pytest.raises(InvalidValue, match="empty"):
        segment_text("")


# --- culprits and replacements -----------------------------------------------------------


def test_culprits_are_listed_once_each_with_counts_in_first_seen_order() -> None:
    info = segment_text("“Sale” – 20% off… ’til Sunday’s end")
    assert info.encoding is U
    assert info.culprits == (
        Culprit("“", 1, '"'),
        Culprit("”", 1, '"'),
        Culprit("–", 1, "-"),
        Culprit("…", 1, "..."),
        Culprit("’", 2, "'"),
    )


@pytest.mark.parametrize(
    ("char", "replacement"),
    [
        ("‘", "'"),
        ("´", "'"),
        ("„", '"'),
        ("—", "-"),
        ("\u00a0", " "),  # no-break space
        ("\u202f", " "),  # narrow no-break space
        ("\u2009", " "),  # thin space
        ("\u200b", ""),  # zero-width space: invisible, dropped
        ("\t", " "),
        ("á", "a"),
        ("ﬁ", "fi"),
        ("Ａ", "A"),
        ("Ο", "O"),  # Greek capital omicron looks like O
        ("λ", "Λ"),  # Greek is sent in capitals
        ("漢", None),
        ("😀", None),
    ],
)
def test_culprit_replacement(char: str, replacement: str | None) -> None:
    assert segment_text(f"a{char}b").culprits == (Culprit(char, 1, replacement),)


def test_gsm7_replacement_makes_punctuation_gsm7() -> None:
    text = "“Sale” – 20% off…\u00a0’til Sunday"
    replaced = gsm7_replacement(text)
    assert replaced == '"Sale" - 20% off... \'til Sunday'
    assert segment_text(replaced).encoding is G


def test_gsm7_replacement_keeps_characters_without_a_stand_in() -> None:
    assert gsm7_replacement("Hi ’there’ 😀 漢") == "Hi 'there' 😀 漢"


def test_gsm7_replacement_leaves_gsm7_characters_alone() -> None:
    assert gsm7_replacement("Ça coûte 5€ {promo} @home\n") == "Ça coute 5€ {promo} @home\n"


def test_gsm7_replacement_composes_decomposed_accents_first() -> None:
    # "e" + combining acute: composed it is the GSM-7 é, so the accent survives.
    assert gsm7_replacement("Caf" + "e\u0301") == "Café"
    assert segment_text("Caf" + "e\u0301").culprits == (Culprit("\u0301", 1, ""),)


MARKETING = MessageCategory.MARKETING


@pytest.mark.parametrize(
    "text",
    [
        "Blossom: nonstop deals all weekend!",
        "Blossom: don't stop shopping, 20% off",
        "Blossom: stop by our store today",
        "Blossom: STOPWATCHES half price",
    ],
)
def test_a_marketing_text_that_only_mentions_stop_still_gets_the_opt_out_footer(text: str) -> None:
    assert compose(text, MARKETING, "Blossom", DEFAULT_FOOTER) == f"{text}\n{DEFAULT_FOOTER}"


@pytest.mark.parametrize(
    ("text", "footer"),
    [
        ("Blossom: 20% off. Reply STOP to opt out", DEFAULT_FOOTER),
        ("Blossom: 20% off, text stop to end", DEFAULT_FOOTER),
        ("Blossom: 20% off. Txt  STOP to quit", DEFAULT_FOOTER),
        (
            "Blossom: -20 %. Répondez ARRET pour vous désabonner",
            "Répondez ARRET pour vous désabonner",
        ),
    ],
)
def test_a_text_that_already_says_how_to_opt_out_gets_no_second_footer(
    text: str, footer: str
) -> None:
    assert compose(text, MARKETING, "Blossom", footer) == text


@pytest.mark.parametrize(
    ("brand", "text"),
    [("Sale", "Summer sale: 20% off"), ("Sale", "Wholesale prices"), ("Bloom", "Blooming deals")],
)
def test_the_brand_is_added_unless_the_text_names_it_as_a_word(brand: str, text: str) -> None:
    assert compose(text, MARKETING, brand, "") == f"{brand}: {text}"


@pytest.mark.parametrize(
    ("brand", "text"),
    [
        ("Blossom", "New at Blossom: tulips"),
        ("H&M!", "H&M! spring drop"),
        ("Sale", "Sale: 20% off"),
    ],
)
def test_a_text_that_names_the_brand_is_not_prefixed_again(brand: str, text: str) -> None:
    assert compose(text, MARKETING, brand, "") == text


@pytest.mark.parametrize("category", [MessageCategory.TRANSACTIONAL, MessageCategory.SYSTEM])
def test_other_texts_go_as_written(category: MessageCategory) -> None:
    assert compose(" Your order shipped ", category, "Blossom", DEFAULT_FOOTER) == (
        "Your order shipped"
    )


def test_the_footer_a_text_needs_counts_toward_its_segments() -> None:
    text = "Blossom: stop by " + "a" * 140  # 157 characters: one segment alone
    sent = compose(text, MARKETING, "Blossom", DEFAULT_FOOTER)
    assert segment_text(text).segments == 1
    assert segment_text(sent).segments == 2
