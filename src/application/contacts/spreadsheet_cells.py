"""Contact CSV cells as spreadsheets read them.

A spreadsheet runs a cell that starts with one of `FORMULA_START` as a formula (CWE-1236),
and the free-text columns hold what shoppers typed (their names in Shopify). The export
writes such a cell with a leading apostrophe, which makes a spreadsheet show it as text;
the import takes the apostrophe off again, so an exported file imports as it was.
"""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def as_text(value: str | None) -> str | None:
    return f"'{value}" if value and value.startswith(FORMULA_START) else value


def from_text(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_START) else value
