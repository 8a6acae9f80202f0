"""Deterministic reading of table cells: '1,234', '4,31,952', '(1,234)', '–0.8%', '$1.2bn', '310*', 'Nil'.

A cell value is what the cell says, never rescaled: a header's scale ('Rs. in Lakhs', "in 000's") goes into the
unit label so the axis says it, and the plotted number is the one printed in the cell. The unit vocabulary
(currency symbols and codes, percent words, pint units) is the claim verifier's (`assistant.entailment.text`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.entailment.numbers import CURRENCY, PERCENT, unit_of

MINUS = "-−–‒﹣－"  # hyphen-minus, minus sign, en dash, figure dash, small and full-width hyphen-minus
FOOTNOTE = "*†‡§¶#¹²³⁴⁵⁶⁷⁸⁹⁰"
MISSING = frozenset(["na", "n/a", "n.a.", "n.a", "nil", "nil.", "none", "-", "--", "–", "—", "‒", "n.m.", "nm", "..."])
_CURRENCY_SIGNS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "rs": "INR", "rs.": "INR",
                   "inr": "INR", "usd": "USD", "eur": "EUR", "gbp": "GBP", "us$": "USD", "chf": "CHF"}
_SCALE_WORDS = {"k": "thousand", "thousand": "thousand", "thousands": "thousand", "000": "thousand",
                "000s": "thousand", "000's": "thousand", "'000": "thousand", "m": "million", "mn": "million",
                "mm": "million", "million": "million", "millions": "million", "bn": "billion", "b": "billion",
                "billion": "billion", "billions": "billion", "lakh": "lakh", "lakhs": "lakh", "lac": "lakh",
                "lacs": "lakh", "crore": "crore", "crores": "crore", "cr": "crore"}

_CURRENCY_RE = r"(?:US\$|[$€£¥₹]|Rs\.?|INR|USD|EUR|GBP|CHF)"
_DIGITS = r"(?:\d{1,3}(?:[,\u2009\u202f']\d{2,3})+(?:\.\d+)?|\d{1,3}(?:\.\d{3})+,\d+|\d+(?:[.,]\d+)?|\.\d+)"
_M = re.escape(MINUS)
_CELL = re.compile(
    rf"""^(?P<open>\()?\s*(?P<sign>[+{_M}])?\s*(?P<cur>{_CURRENCY_RE})?\s*(?P<sign2>[{_M}])?\s*
    (?P<num>{_DIGITS})\s*(?P<scale>k|K|m|M|mn|bn|B|million|billion|thousand|lakhs?|crores?|cr)?\.?\s*
    (?P<pct>%|percent|per\ cent|pct)?\s*(?P<cur2>{_CURRENCY_RE})?\s*(?P<close>\))?\s*(?P<pct2>%)?\s*
    (?P<foot>[{FOOTNOTE}]+|\[\d{{1,2}}\]|\([a-z]\))?$""", re.X | re.I)
# a number token inside a cell that stacks several rows' values ("390.00 397.00 395.00")
TOKEN = re.compile(rf"(?<![\w.,{_M}])\(?[+{_M}]?{_CURRENCY_RE}?\d[\d,.]*%?\)?%?[{FOOTNOTE}]*"
                   rf"|(?<!\S)(?:NA|N/A|Nil\.?|[{_M}—])(?!\S)",
                   re.I)

_PLUS_MINUS = re.compile(r"\s*(?:±|\+/-|\+-)\s*\d[\d.,]*%?\s*$")
_RANGE = re.compile(rf"^\d[\d,.]*\s*[{_M}—]\s*\d[\d,.]*$|^\d[\d,.]*\s+(?:to|and)\s+\S+")


@dataclass(frozen=True)
class CellValue:
    """A number read from a cell: its value as printed, its unit ('%', a currency code, a pint unit or '')
    and scale word ('thousand', 'lakh', ...), and the cell text it came from."""

    value: float
    raw: str
    unit: str = ""
    scale: str = ""


@dataclass(frozen=True)
class HeaderUnit:
    """What a column header says about its cells: '%', a currency, a scale ('Rs. in Lakhs'), a pint unit."""

    unit: str = ""
    scale: str = ""
    label: str = ""  # the header's own words for it ('Rs. in Lakhs', '%'), for the axis title

    def describe(self) -> str:
        return self.label or " ".join(p for p in (self.unit, self.scale) if p)


def is_missing(text: str) -> bool:
    """'NA', 'Nil', '—', an empty cell: a value the table says it does not have."""
    return _clean(text).lower() in MISSING or not _clean(text)


def parse_cell(text: str, header: HeaderUnit | None = None) -> CellValue | None:
    """The number a cell holds, or None when it holds no single number (text, a range, two numbers, 'NA')."""
    clean = _clean(text)
    spread = _PLUS_MINUS.search(clean)  # '85.2 ± 0.3': the estimate is the value, the spread is not
    if spread:
        clean = clean[: spread.start()] + ("%" if spread.group(0).endswith("%")
                                           and "%" not in clean[: spread.start()] else "")
    m = _CELL.match(clean)
    if not m or bool(m.group("open")) != bool(m.group("close")):
        return None
    number = _number(m.group("num"))
    if number is None:
        return None
    sign = m.group("sign")
    negative = bool(m.group("open")) or (sign is not None and sign in MINUS) or m.group("sign2") is not None
    value = -number if negative else number
    unit = _cell_unit(m, header)
    scale = _SCALE_WORDS.get((m.group("scale") or "").lower(), "") or (header.scale if header else "")
    return CellValue(value, text.strip(), unit, scale)


def header_unit(header: str) -> HeaderUnit:
    """Unit and scale named by a column header: 'Dividend (%)', 'High (Rs.)', "Volume in 000's (Nos.)",
    'Total Dividend (Rs. in Lakhs)', 'Revenue ($ millions)', 'Weight (kg)'."""
    text = _clean(header)
    low = text.lower()
    words = re.findall(r"us\$|[$€£¥₹%]|'?\d{3}'?s?|[a-z]+\.?|[a-z]+'s", low)
    unit = ""
    if "%" in low or any(w in PERCENT for w in words) or re.search(r"\bper ?cent", low):
        unit = "%"
    else:
        unit = next((_CURRENCY_SIGNS[w] for w in words if w in _CURRENCY_SIGNS), "")
        unit = unit or next((CURRENCY[w] for w in words if w in CURRENCY and w not in ("pound",)), "")
    scale = next((_SCALE_WORDS[w.strip("'")] for w in words if w.strip("'") in _SCALE_WORDS
                  and (w.strip("'") not in ("m", "b", "k", "cr") or "(" in low)), "")
    if re.search(r"in\s*'?000'?s?|\('?000'?s?\)", low):
        scale = "thousand"
    if not unit:
        inside = re.findall(r"\(([^()]{1,20})\)", text)
        unit = next((u for u in (unit_of(p.strip()) for p in inside) if u), "")
    label = (_unit_label(text) or ("%" if unit == "%" else "")) if unit or scale else ""
    return HeaderUnit(unit, scale, label)


def tokens(cell: str) -> list[str]:
    """The number (and missing-value) tokens of a cell, in order; [] when the cell also holds other text."""
    clean = _clean(cell)
    if _RANGE.match(clean):  # '1 – 5000', '10-20': one label, not two values
        return []
    found = TOKEN.findall(clean)
    rest = TOKEN.sub(" ", clean)
    if re.search(r"[^\s,;]", rest):
        return []
    return found


def _clean(text: str) -> str:
    text = text.replace("\u00a0", " ").replace("\\|", "|").strip()
    return re.sub(r"\s+", " ", text)


def _number(digits: str) -> float | None:
    d = digits.replace("\u2009", "").replace("\u202f", "").replace("'", "")
    if re.fullmatch(r"\d{1,3}(?:\.\d{3})+,\d+", d):  # 1.234,5: a decimal comma
        d = d.replace(".", "").replace(",", ".")
    elif re.fullmatch(r"\d+,\d{1,2}", d):  # 3,5 alone: a decimal comma, not a thousands separator
        d = d.replace(",", ".")
    elif "," in d:
        if not re.fullmatch(r"\d{1,3}(?:,\d{2,3})+(?:\.\d+)?", d) or not re.search(r",\d{3}(?:\.|$)", d):
            return None  # 12,34,5: not a grouping any locale uses
        d = d.replace(",", "")
    try:
        return float(d)
    except ValueError:
        return None


def _cell_unit(m: re.Match[str], header: HeaderUnit | None) -> str:
    cur = m.group("cur") or m.group("cur2")
    if m.group("pct") or m.group("pct2"):
        return "%"
    if cur:
        return _CURRENCY_SIGNS.get(cur.lower().rstrip("."), _CURRENCY_SIGNS.get(cur.lower(), cur.upper()))
    return header.unit if header else ""


def _unit_label(header: str) -> str:
    inside = re.findall(r"\(([^()]*)\)", header)
    if inside:
        return inside[-1].strip()
    m = re.search(r"\b(?:in|%|per ?cent)\b.*$", header, re.I)
    return m.group(0).strip() if m else ""
