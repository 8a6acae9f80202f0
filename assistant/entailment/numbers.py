"""Numbers in claims and sources: number words and digits as one value (`number-parser`: twenty-five → 25),
spoken fractions and shares ("half an hour", "a third of them", "4 in 5"), units and conversions (`pint`: 2 hours =
120 minutes; 40 litres ≠ 40 gallons), currencies and percentages, ranges, times of day, and the arithmetic a claim
may do on the source's own figures (a difference, a sum, a share of a whole). `assistant.entailment.text` reads
the rest of a sentence.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from assistant.prompting import STOPWORDS

HEDGES = frozenset(["about", "around", "approximately", "roughly", "nearly", "almost", "some", "circa", "approx", "~",
                    "estimated"])


RANGE_WORDS = frozenset(["up", "to", "least", "most", "over", "under", "than", "more", "less", "nearly", "almost"])


_THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?!\d|,\d)")


_NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                 "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
                 "thousand million billion dozen")


NUMBER_WORDS = frozenset(_NUMBER_WORDS.split())
_NOT_EVEN = re.compile(r"\bnot even\s+(?=\d|(?:a\s+)?(?:" + "|".join(sorted(NUMBER_WORDS)) + r")\b)", re.I)


_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "bn": 1e9, "mn": 1e6, "k": 1e3}


CURRENCY = {"$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "€": "EUR", "eur": "EUR", "euro": "EUR",
            "euros": "EUR", "£": "GBP", "gbp": "GBP", "pound sterling": "GBP", "¥": "JPY", "yen": "JPY",
            "jpy": "JPY", "chf": "CHF", "francs": "CHF"}


PERCENT = frozenset({"%", "percent", "per cent", "percentage", "pct"})


_NOT_UNITS = frozenset(["a", "at", "in", "as", "is", "it", "or", "on", "to", "by", "of", "an", "be", "if", "do", "no",
                        "us", "pi", "units", "unit", "point", "points", "people", "year-old"]) | STOPWORDS


_SYMBOL_UNITS = {"°C": "degC", "°F": "degF", "L": "liter", "l": "liter", "h": "hour", "hrs": "hour", "hr": "hour",
                 "g": "gram", "m": "meter", "s": "second", "sec": "second", "secs": "second", "mins": "minute",
                 "litres": "liter", "litre": "liter", "metres": "meter", "metre": "meter", "tonne": "metric_ton",
                 "tonnes": "metric_ton", "tons": "ton", "celsius": "degC", "fahrenheit": "degF", "kph": "km/h",
                 "knots": "knot", "kt": "knot", "feet": "foot",  # "feet": pint reads it, the name check misses it
                 "kB": "kilobyte", "KB": "kilobyte", "MB": "megabyte", "GB": "gigabyte", "TB": "terabyte",
                 "PB": "petabyte", "kbps": "kilobit/second", "Kbps": "kilobit/second", "Mbps": "megabit/second",
                 "Gbps": "gigabit/second", "mAh": "milliampere_hour"}
# units of two words: "1,450 nautical miles" is not 1,450 miles
_TWO_WORD_UNITS = {("nautical", "mile"): "nautical_mile", ("fluid", "ounce"): "fluid_ounce",
                   ("light", "year"): "light_year", ("horse", "power"): "horsepower"}


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str  # a pint unit name, "%", a currency code, or "" for a bare number
    text: str
    hedged: bool = False  # "about 40", "up to 40": a bound or an estimate, not an exact figure
    unit_word: str = ""  # the word that named the unit ("hours"), left out when comparing the clause's words
    bound: str = ""  # "lower" ("more than 40", "at least 40"), "upper" ("up to 40", "under 40"), or "" (a figure)

    def __str__(self) -> str:
        return self.text


@lru_cache(maxsize=1)
def _ureg() -> Any:
    import pint

    return pint.UnitRegistry()


@lru_cache(maxsize=2048)
def unit_of(token: str) -> str:
    """A pint unit name for a token that names a unit ('hours', 'km', 'litres'), else ''."""
    t = token.strip()
    if t in _SYMBOL_UNITS:
        return _SYMBOL_UNITS[t]
    if t.lower() in _SYMBOL_UNITS:
        return _SYMBOL_UNITS[t.lower()]
    if len(t) < 2 or t.lower() in _NOT_UNITS or not re.fullmatch(r"[A-Za-z/²³µ]+", t):
        return ""
    try:
        u = _ureg().parse_units(t)
    except Exception:
        return ""
    if u.dimensionless:
        return ""
    # pint reads any prefix + unit ("cat" = centi-technical-atmosphere): keep only a unit's own symbol or name
    symbol, name = f"{u:~}".replace(" ", ""), str(u)
    low = t.lower()
    return name if t == symbol or low.rstrip("s")[:4] == name[:4] or low == name else ""


def same_quantity(a: Quantity, b: Quantity) -> bool | None:
    """True when a and b are the same amount, False when they are not, None when incomparable (different kinds
    of unit: a date and a length)."""
    if CLOCK in (a.unit, b.unit):
        return a.unit == b.unit and _close(a.value, b.value, a.hedged or b.hedged)
    if {a.unit, b.unit} == {"pound", "GBP"}:  # "five thousand pounds" is money as often as weight
        return _close(a.value, b.value, a.hedged or b.hedged)
    if a.unit == b.unit or not a.unit or not b.unit:
        return _close(a.value, b.value, a.hedged or b.hedged) or _percent_match(a, b)
    if "%" in (a.unit, b.unit) or a.unit.isupper() or b.unit.isupper():  # currency or percent vs a unit
        return False
    try:
        converted = float(_ureg().Quantity(b.value, b.unit).to(a.unit).magnitude)
        back = float(_ureg().Quantity(a.value, a.unit).to(b.unit).magnitude)
    except Exception:
        return False  # 40 litres vs 40 kg: other dimensions, so another quantity
    # a conversion is rounded to the figure it is shown as: 6 feet = 1.83 m, 100 km = 62 miles (not 10 gallons
    # = 40 litres)
    return (_close(a.value, converted, a.hedged or b.hedged) or _shown_as(converted, a.value)
            or _shown_as(back, b.value))


def _shown_as(converted: float, shown: float) -> bool:
    """A conversion rounded to the figure's own precision, within 5% (90 minutes is not '2 hours', though 1.5
    rounds to 2)."""
    return round(converted, _decimals(shown)) == round(shown, _decimals(shown)) \
        and abs(converted - shown) <= 0.05 * abs(shown)


def _percent_match(a: Quantity, b: Quantity) -> bool:
    """'half' (0.5) and '50%' are the same share."""
    pa, pb = (q.value / 100 if q.unit == "%" else q.value for q in (a, b))
    return "%" in (a.unit, b.unit) and a.unit != b.unit and _close(pa, pb, False)


def _close(x: float, y: float, hedged: bool) -> bool:
    if math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9):
        return True
    if hedged:
        return math.isclose(x, y, rel_tol=0.1)
    return _rounds_to(y, x) or _rounds_to(x, y)


def _rounds_to(precise: float, shown: float) -> bool:
    """3.47 shown as 3.5 (the shown figure has fewer decimals and is the rounding of the precise one)."""
    decimals = _decimals(shown)
    return decimals < _decimals(precise) and decimals >= 1 and round(precise, decimals) == round(shown, decimals)


def _decimals(x: float) -> int:
    s = repr(float(x)).rstrip("0").rstrip(".")
    return len(s.split(".")[1]) if "." in s else 0


_LETTERS = str.maketrans({"ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "ł": "l",
                          "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "þ": "th", "ı": "i"})


def fold_letters(text: str) -> str:
    """Latin letters with accents as plain ones, so that 'Tromsø', 'Malmö' and 'Zoë' stay whole words (the
    tokenizers read A-Z): 'Tromso', 'Malmo', 'Zoe'. Other scripts and symbols (°, €, ², µ) are kept."""
    if text.isascii():
        return text
    text = text.translate(_LETTERS)
    out = []
    for ch in text:
        if ch.isalpha() and not ch.isascii():
            base = unicodedata.normalize("NFKD", ch)
            if base[0].isascii() and all(unicodedata.combining(c) for c in base[1:]):
                ch = base[0]
        out.append(ch)
    return "".join(out)


_AM_PM = re.compile(r"\b(1[0-2]|0?[1-9])(?:[:.]([0-5]\d))?\s*([ap])\.?\s?m\b\.?", re.I)


# "between midnight and 5 am", "until noon": a time of day (not "the midnight sun", "a noon meeting")
_MIDNIGHT = re.compile(r"\b(at|from|between|until|till|to|after|before|by|since|past|and)\s+(midnight|noon|midday)\b"
                       r"(?!\s+(?:sun|mass|oil|feast|blue|meeting))", re.I)


def _clock_24(m: re.Match[str]) -> str:
    hour = int(m.group(1)) % 12 + (12 if m.group(3).lower() == "p" else 0)
    return f"{hour:02d}:{m.group(2) or '00'}"


def normalise(text: str) -> str:
    """Digits for number words, no thousands separators, hyphenated '14-hour' split, unicode quotes plain."""
    text = text.replace("’", "'").replace("–", "-").replace("—", " - ").replace("\u00a0", " ")
    text = fold_letters(text)
    text = _AM_PM.sub(_clock_24, text)  # "5:30 pm" = "17:30", "11 am" = "11:00" (not 11 attometres)
    text = _MIDNIGHT.sub(lambda m: f"{m.group(1)} {'00:00' if m.group(2).lower() == 'midnight' else '12:00'}", text)
    text = re.sub(r"(\d)\s*(km|cm|mm|m|ft|mi|in)(?:²|2)(?![A-Za-z0-9])", r"\1 square \2", text)  # 142 m² = 142 square m
    text = re.sub(r"^\s*(?:yes|no)\s*[,.;:!-]\s*", "", text, flags=re.I)  # "No, the tablets are not ..." answers
    # "According to the sources, ...": where the claim comes from is not part of what it claims
    text = re.sub(r"^\s*(?:according to|based on|as (?:stated|shown|mentioned|described) (?:in|on|by)|from|in)\s+"
                  r"(?:the |this |these )?(?:information |text |data )?(?:provided |given |shown )?(?:in |by )?"
                  r"(?:the |this |these )?(?:sources?|documents?|text|context|passages?|information|data|report|"
                  r"chart|table|figure|page \d+)\b[^,]{0,40},\s*", "", text, flags=re.I)
    text = re.sub(r"\bwith or without\b", "regardless of", text, flags=re.I)
    # bounds are not negations: "no more than 70%" = "at most 70%"; "gluten-free" = "no gluten"
    text = re.sub(r"\b(?:no|not)\s+(?:more|greater|higher)\s+than\b", "at most", text, flags=re.I)
    text = re.sub(r"\b(?:no|not)\s+(?:less|fewer|lower)\s+than\b", "at least", text, flags=re.I)
    text = re.sub(r"\b(?:no|not)\s+later\s+than\b", "by", text, flags=re.I)  # a deadline, not a negation
    # "the first two quarters" = "the first and second quarters"
    text = _FIRST_N.sub(_first_n, text)
    # "on the fifth day of the month" = "on day 5 of the month": an ordinal day is a figure ("first" elsewhere is not)
    text = _ORDINAL_DAY.sub(lambda m: f"{m.group(1) or ''}day {_ORDINALS.get((m.group(2) or '').lower(), m.group(3))}",
                            text)
    # "whichever comes first" / "whichever is later": which of two limits applies
    text = re.sub(r"\bwhichever\s+(?:comes|is|occurs|happens|falls)\s+(first|earlier|sooner|earliest|soonest)\b",
                  "the earliest limit applies", text, flags=re.I)
    text = re.sub(r"\bwhichever\s+(?:comes|is|occurs|happens|falls)\s+(last|later|latest)\b",
                  "the latest limit applies", text, flags=re.I)
    # "never ... without an escort" = "always ... with an escort" (two negations)
    text = re.sub(r"\bnever\b((?:\s+[A-Za-z]+){1,6}?)\s+without\b", r"always\1 with", text, flags=re.I)
    # "drops support for Python 3.8" = "no longer supports" it
    text = re.sub(r"\b(?:drops?|dropped|dropping|ends?|ended|ending|discontinues?|discontinued|removes?|removed)\s+"
                  r"support\s+for\b", "no longer supports", text, flags=re.I)
    # "better than nothing at all", "not at all": an intensifier, not a quantifier ("at all times", "at all
    # branches" stay one)
    text = re.sub(r"\s+at\s+all\b(?=\s*(?:[.,;:!?)\][]|$))", "", text, flags=re.I)
    text = re.sub(r"\bnot\s+at\s+all\b", "not", text, flags=re.I)
    text = re.sub(r"\b(?:no|not)\s+(?:earlier|sooner)\s+than\b", "from", text, flags=re.I)
    # "not even twelve of them" = fewer than twelve
    text = _NOT_EVEN.sub("fewer than ", text)
    # "penalty-free withdrawals" are withdrawals without a penalty: the negation is of the penalty only
    text = re.sub(r"\b([A-Za-z]{3,})-free\s+(?!(?:of|from|to|and|or|for|in|on|at|with|by|is|are|was|were)\b)"
                  r"([A-Za-z]{3,})\b", r"\2 without \1", text)
    text = re.sub(r"\b([A-Za-z]{3,})-free\b", r"no \1", text)
    # "free" of a price is "no charge" ("the cathedral itself is free", "bicycles travel free"); "short of" a
    # thing is not reaching it ("34 seats, short of a majority")
    text = re.sub(r"\bfree of charge\b", "no charge", text, flags=re.I)
    text = re.sub(r"\b(is|are|was|were|be|been|remains?|stays?|go(?:es)?|travel(?:s|led)?|cross(?:es)?|ride(?:s)?|"
                  r"enter(?:s)?|for|entry|admission)\s+(?:is\s+)?free\b(?![- ](?:of|from|to|time|trial|will|"
                  r"range|speech|market|kick))", r"\1 no charge", text, flags=re.I)
    text = re.sub(r"\b(?:fell|falls?|came|comes?|stopped|stops?|stayed|stays?|was|were|is|are)?\s*short of\b", " not",
                  text, flags=re.I)
    text = re.sub(r"(?<=[A-Za-z0-9])'s\b", "", text)  # possessive
    text = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), text)
    # an age is a quantity, not an opposite of "young": "under eight weeks old" = "younger than eight weeks"
    text = re.sub(r"\b(\d+(?:\.\d+)?|[a-z]+)[\s-]+(day|week|month|year)s?[\s-]+old\b", r"\1 \2s of age", text,
                  flags=re.I)
    text = re.sub(r"(\d)-(?=[A-Za-z])", r"\1 ", text)
    # 40kg -> 40 kg (not X2; 4K, 5G and 3D are names, not 4 kelvin)
    text = re.sub(r"(?<=\d)(?<!\b\d)(?=[A-Za-z%°])(?![A-Za-z]*\d)|(?<=\b\d)(?=[A-Za-z%°])(?![KGD]\b)(?![A-Za-z]*\d)",
                  " ", text)
    # the year before this one is a time, not a quantity the claim states: "a year earlier" = "last year"
    text = _PREVIOUS_YEAR.sub("the previous year", text)
    text = _fractions(text)
    text = _periods(text)
    text = _number_words(text)
    text = _multipliers(text)
    # "one euro twenty", "3 pounds 50": a spoken price
    text = re.sub(r"\b(\d+|one|an?)\s+(euros?|pounds?|dollars?)\s+(?:and\s+)?(\d{1,2})(?:\s+(?:cents?|pence|p))?"
                  r"(?=\s*(?:[.,;:!?)]|$|per\b|an?\b|each\b|every\b))",
                  lambda m: f"{1 if m.group(1).isalpha() else m.group(1)}.{int(m.group(3)):02d} {m.group(2)}", text,
                  flags=re.I)
    text = _frequencies(text)
    text = re.sub(r"\b(\d+(?:\.\d+)?)\s*\(\s*\1\s*\)", r"\1", text)  # "thirty (30)" -> "30"
    return _RATIO.sub(_ratio, text)


_ORDINALS = {w: i + 1 for i, w in enumerate([
    "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
    "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth",
    "twentieth"])}
_FIRST_N = re.compile(r"\bfirst (two|three|four)\b(?= [a-z])", re.I)
_IN_ORDER = ["first", "second", "third", "fourth"]


def _first_n(m: re.Match[str]) -> str:
    n = {"two": 2, "three": 3, "four": 4}[m.group(1).lower()]
    return ", ".join(_IN_ORDER[: n - 1]) + " and " + _IN_ORDER[n - 1]


_ORDINAL_DAY = re.compile(r"\b(?:the\s+)?((?:working|business|calendar)\s+)?(?:(" + "|".join(_ORDINALS) +
                          r")|(\d{1,2})(?:st|nd|rd|th))\s+day\b(?=\s+(?:of|after|before|following)\b)", re.I)
_PREVIOUS_YEAR = re.compile(r"\b(?:(?:a|one) year (?:earlier|before|ago|previously)|last year|the (?:previous|prior|"
                            r"preceding) year|the year before)\b", re.I)

_FRACTION = {"half": 0.5, "quarter": 0.25, "third": 1 / 3}

_PERIOD_UNITS = r"(hour|day|week|fortnight|month|year|decade|century|minute|second)"
# "for a year", "within a year", "a year later": one year. Not "3 withdrawals a year", "£5 a month" (a rate).
_PERIOD_BEFORE = re.compile(r"\b(for|after|within|in|over|than|about|around|nearly|almost|under|least|most|past|next|"
                            r"last|only|just|roughly|approximately|barely|then|took|takes|take|lasts?|lasted)\s+"
                            r"(?:the\s+)?(?:a|an|one)\s+" + _PERIOD_UNITS + r"\b", re.I)
_PERIOD_AFTER = re.compile(r"\b(?:a|an|one)\s+" + _PERIOD_UNITS + r"\s+(?=(?:later|earlier|ago|after|before|long|"
                           r"old)\b)", re.I)
_THE_PERIOD = re.compile(r"\b(?:the\s+)?(next|past|last|coming|previous)\s+(century|decade|fortnight)\b", re.I)


def _periods(text: str) -> str:
    """A period named with 'a' is a quantity of 1: 'lifted an hour later' -> '1 hour later', 'in place for a year'
    -> 'for 1 year'; 'the next century' -> 'the next 1 century' (= 100 years)."""
    text = _PERIOD_BEFORE.sub(lambda m: f"{m.group(1)} 1 {m.group(2)}", text)
    text = _PERIOD_AFTER.sub(lambda m: f"1 {m.group(1)} ", text)
    return _THE_PERIOD.sub(lambda m: f"the {m.group(1)} 1 {m.group(2)}", text)


_TIMES = re.compile(r"\b(\d+(?:\.\d+)?)\s+times\s+(?=(?:as|more|higher|larger|greater|bigger|faster|longer|"
                    r"heavier|stronger|the|that|what|over|its|their|his|her|than)\b)", re.I)
_FOLD = re.compile(r"\b(\d+(?:\.\d+)?)\s*-?\s*fold\b", re.I)
_MULTIPLYING = {"doubl": 2, "tripl": 3, "quadrupl": 4, "halv": 0.5}
_MULTIPLY = re.compile(r"\b(doubl|tripl|quadrupl|halv)(ed|es|ing)\b", re.I)


_PER_YEAR = {"day": 365, "week": 52, "fortnight": 26, "month": 12, "quarter": 4, "year": 1}
_ADVERB_RATE = {"daily": 365, "weekly": 52, "fortnightly": 26, "monthly": 12, "quarterly": 4, "annually": 1,
                "yearly": 1}
_TIMES_PER = re.compile(r"\b(\d+(?:\.\d+)?\s+times|once|twice|thrice)\s+(?:a|an|per|each|every)\s+"
                        r"(day|week|fortnight|month|quarter|year)\b", re.I)
_EVERY = re.compile(r"\bevery\s+(?:(\d+)\s+(?=(?:week|month|quarter|year)s?\b))?"
                    r"(day|week|fortnight|month|quarter|year)s?\b", re.I)
_TIMES_ADVERB = re.compile(r"\b(\d+(?:\.\d+)?\s+times|once|twice|thrice)\s+(daily|weekly|fortnightly|monthly|quarterly|"
                           r"annually|yearly)\b", re.I)
_VERB_RATE = re.compile(r"\b([a-z]+ed|paid|held|run|runs|given|taken|met|meets|sent|done|made|is|are|be)\s+"
                        r"(?:out\s+)?(daily|weekly|fortnightly|monthly|quarterly|annually|yearly)\b", re.I)


def _frequencies(text: str) -> str:
    """How often, as events a year: 'paid monthly' = 'twelve times a year' = 12 peryear; 'every three months' =
    'four times a year'. Only a calendar period, and 'monthly' only after a verb ('a daily intake' stays)."""
    def times(m: re.Match[str]) -> str:
        count = {"once": 1, "twice": 2, "thrice": 3}.get(m.group(1).lower())
        n = count if count is not None else float(m.group(1).split()[0])
        return f"{n * _PER_YEAR[m.group(2).lower()]:g} peryear"

    def every(m: re.Match[str]) -> str:
        n = float(m.group(1)) if m.group(1) else 1.0
        return f"every {_PER_YEAR[m.group(2).lower()] / n:g} peryear {m.group(2)}"  # the period stays a word

    def adverb(m: re.Match[str]) -> str:
        count = {"once": 1, "twice": 2, "thrice": 3}.get(m.group(1).lower())
        n = count if count is not None else float(m.group(1).split()[0])
        return f"{n * _ADVERB_RATE[m.group(2).lower()]:g} peryear"

    text = _TIMES_PER.sub(times, text)
    text = _TIMES_ADVERB.sub(adverb, text)
    text = _EVERY.sub(every, text)
    return _VERB_RATE.sub(lambda m: f"{m.group(1)} {_ADVERB_RATE[m.group(2).lower()]} peryear {m.group(2)}", text)


_MULTIPLE_WORDS = {"double": 2, "triple": 3, "treble": 3, "quadruple": 4}


def _multipliers(text: str) -> str:
    """A multiple is a quantity in 'fold': '2 times as many', '2.3-fold higher', 'doubled' (2 fold), 'halved'."""
    # "paid at double the normal rate", "triple its size": a multiple of the thing named next
    text = re.sub(r"\b(double|triple|treble|quadruple)\s+(?=(?:the|its|their|his|her|that|this|our|your)\s)",
                  lambda m: f"{_MULTIPLE_WORDS[m.group(1).lower()]} fold ", text, flags=re.I)
    text = _TIMES.sub(lambda m: f"{m.group(1)} fold ", text)
    text = _FOLD.sub(lambda m: f"{m.group(1)} fold", text)
    return _MULTIPLY.sub(lambda m: f"{m.group(0)} {_MULTIPLYING[m.group(1).lower()]:g} fold", text)


_UNIT_WORD = r"([A-Za-z]+)"


def _fractions(text: str) -> str:
    """'half an hour' -> '0.5 hour', 'a quarter of a kilogram' -> '0.25 kilogram', 'an hour and a half' ->
    '1.5 hour', 'two and a half hours' -> '2.5 hours', 'twice' -> '2 times'. Only before a real unit."""
    def unit_ok(word: str) -> bool:
        return bool(unit_of(word))

    def frac(m: re.Match[str]) -> str:
        if re.search(r"\b(?:the|same|this|that|last|next|first|second|third|fourth|final|each|every|per|its|their)"
                     r"\s+$", m.string[: m.start()], re.I):
            return m.group(0)  # "the same quarter a year earlier": a quarter of the year, not 0.25 year
        return f"{_FRACTION[m.group(1).lower()]:g} {m.group(2)}" if unit_ok(m.group(2)) else m.group(0)

    def and_half(m: re.Match[str]) -> str:
        return f"1.5 {m.group(1)}" if unit_ok(m.group(1)) else m.group(0)

    text = re.sub(r"\b(?:an?\s+|one\s+)?(half|quarter|third)\s+(?:of\s+)?(?:an?\s+)" + _UNIT_WORD, frac, text,
                  flags=re.I)
    text = re.sub(r"\b(?:an?|one)\s+" + _UNIT_WORD + r"\s+and\s+a\s+half\b", and_half, text, flags=re.I)
    text = re.sub(r"\b(every|each)\s+" + _UNIT_WORD + r"\s+and\s+a\s+half\b",
                  lambda m: f"{m.group(1)} 1.5 {m.group(2)}" if unit_ok(m.group(2)) else m.group(0), text, flags=re.I)
    text = re.sub(r"\b(\d+|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")\s+and\s+a\s+half\s+"
                  + _UNIT_WORD, lambda m: f"{m.group(1)} and a half {m.group(2)}" if not unit_ok(m.group(2)) else
                  f"{_plus_half(m.group(1))} {m.group(2)}", text, flags=re.I)
    text = re.sub(r"\b(?:an?|one)\s+" + _UNIT_WORD + r"(?=\s+(?:later|earlier|after|before|ago)\b)",
                  lambda m: f"1 {m.group(1)}" if unit_ok(m.group(1)) else m.group(0), text, flags=re.I)
    text = re.sub(r"\b(\d+|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")\s+and\s+a\s+half\s+"
                  r"(thousand|million|billion)\b", _half_scale, text, flags=re.I)  # two and a half thousand = 2500
    text = _SHARE.sub(_share, text)
    text = _SHARE_BY.sub(_share, text)
    text = re.sub(r"\b(about|roughly|nearly|almost|around|some|only|just) about (?=\d)", r"\1 ", text, flags=re.I)
    return re.sub(r"\btwice\b", "2 times", text, flags=re.I)


_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9}


def _half_scale(m: re.Match[str]) -> str:
    value = _plus_half(m.group(1))
    try:
        return f"{float(value) * _SCALES[m.group(2).lower()]:.0f}"
    except ValueError:
        return m.group(0)


_DENOMINATORS = {"half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fifth": 5,
                 "fifths": 5, "tenth": 10, "tenths": 10}


_NUMERATORS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "nine": 9, "1": 1, "2": 2, "3": 3, "4": 4,
               "9": 9}


_SHARE = re.compile(r"\b(?:(a|an|one|two|three|four|nine|[1-49])[\s-]+)?(half|halves|thirds?|quarters?|fifths?|tenths?)"
                    r"\s+of\b", re.I)


# a share without "of": "cut back by about a third", "fell by half", "about half the usual amount"
_SHARE_BY = re.compile(r"(?<=\bby )(?:(?:about|roughly|nearly|almost|around|some) )?(?:(a|an|one|two|three|four|nine)"
                       r"[\s-]+)?(half|thirds?|quarters?|fifths?|tenths?)\b(?!\s+(?:of|an?)\b)(?!-)"
                       r"|(?:(a|an|one|two|three|four|nine)[\s-]+)?(half|thirds?|quarters?)"
                       r"(?=\s+(?:the|its|their|his|her|our|my|your|that|this)\s)", re.I)


def _share(m: re.Match[str]) -> str:
    """'a third of them' -> 'about 33.3333% of them', 'two thirds of' -> 'about 66.6667% of', 'half of' -> 'about
    50% of': a share of a whole, so '7,000 of 21,000' follows from 'a third of 21,000'. Spoken shares are round
    ('a third' for 33%), hence 'about'. Only before 'of' ('a third reason' is not a share)."""
    count, part = (m.group(1), m.group(2)) if m.group(2) else (m.group(3), m.group(4))
    numerator = _NUMERATORS.get((count or "a").lower())
    denominator = _DENOMINATORS[part.lower()]
    if numerator is None or (count is None and denominator != 2) or numerator >= denominator:
        return m.group(0)
    share = f"about {100 * numerator / denominator:g}%"
    return share if m.re is _SHARE_BY and m.group(2) else f"{share} of"  # "by a third": no "of" to keep


def _plus_half(number: str) -> str:
    from number_parser import parse_number

    value = float(number) if number.isdigit() else parse_number(number.lower())
    return f"{float(value) + 0.5:g}" if value is not None else f"{number} and a half"


_RATIO = re.compile(r"\b(\d+)\s+(?:in|out of)\s+(?:every\s+)?(\d+)\b(\s+[A-Za-z]+)?")


def _ratio(m: re.Match[str]) -> str:
    """'4 in 5 households', '1 out of 10 people' -> a share ('80%'); '2 in 10 minutes' stays (a unit follows)."""
    n, d, after = int(m.group(1)), int(m.group(2)), m.group(3) or ""
    if not 0 < n < d or (after.strip() and (unit_of(after.strip()) or after.strip().lower() in PERCENT)):
        return m.group(0)
    if is_year_text(m.group(2)) and not _counted(after.strip()):
        return m.group(0)  # "rose to 214 in 2024, up from 37": a year, unless people are counted ("1 in 2000 births")
    return f"{100 * n / d:g}%{after}"


def is_year_text(text: str) -> bool:
    """A four-digit figure that reads as a year: 1500 to 2200."""
    return len(text) == 4 and text.isdigit() and 1500 <= int(text) <= 2200


def _counted(word: str) -> bool:
    """A word that names what a ratio counts: a noun and not a verb ('births', 'adults'; not 'was')."""
    from lemminflect import getAllLemmas

    found = getAllLemmas(word.lower()) if word else {}
    if word.lower() in ("people", "cases", "patients"):
        return True
    return "NOUN" in found and "VERB" not in found and "AUX" not in found


_NUMWORD_RUN = re.compile(
    r"\b(?:(?:" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + r")(?:[\s-]+(?:and\s+)?)?)+\b", re.I)


def _number_words(text: str) -> str:
    from number_parser import parse_number

    def repl(m: re.Match[str]) -> str:
        run = m.group(0)
        stripped = run.strip(" -")
        if stripped.lower() in _SCALE and re.search(r"\d\s*$", text[: m.start()]):
            return run  # "2.5 million": the scale word stays for the quantity reader
        if stripped.lower() == "one":  # "one of", "the one": a pronoun unless a unit follows
            after = text[m.end(): m.end() + 20].split()
            return run if not after or not (unit_of(after[0].strip(".,;")) or after[0] in PERCENT) else \
                run.replace(stripped, "1")
        if stripped.lower().endswith(" and"):
            stripped = stripped[:-4]
        value = parse_number(stripped.lower().replace("-", " "))
        if value is None:
            return run
        tail = run[len(run.rstrip()):]
        return f"{value}{tail}" if run.rstrip(" -").lower().endswith(stripped.lower()) else run

    return _NUMWORD_RUN.sub(repl, text)


def read_quantities(toks: list[str]) -> list[Quantity]:
    out: list[Quantity] = []
    at: list[int] = []
    for i, t in enumerate(toks):
        clock = re.fullmatch(r"(\d{1,2}):(\d{2})", t)
        if clock and int(clock.group(1)) >= 24:  # "clocking 30:41": no time of day, a race time (min:s)
            out.append(Quantity(int(clock.group(1)) + int(clock.group(2)) / 60, "minute", t, unit_word="minutes"))
            at.append(i)
            continue
        if clock:  # 04:10 (a time of day, or a race time): one quantity, comparable with clock times only
            out.append(Quantity(int(clock.group(1)) * 60 + int(clock.group(2)), CLOCK, t))
            at.append(i)
            continue
        if not re.fullmatch(r"\d+(?:\.\d+)?", t):
            continue
        value, j = float(t), i + 1
        if j < len(toks) and toks[j].lower() in _SCALE:
            value *= _SCALE[toks[j].lower()]
            j += 1
        unit, word = "", ""
        prev = toks[i - 1].lower() if i else ""
        if prev in CURRENCY:
            unit = CURRENCY[prev]
        elif j < len(toks):
            nxt = toks[j].lower()
            if nxt in PERCENT or (nxt == "per" and j + 1 < len(toks) and toks[j + 1].lower() == "cent"):
                unit, word = "%", nxt
                if nxt == "percentage" and j + 1 < len(toks) and toks[j + 1].lower() in ("point", "points"):
                    word = f"{nxt} {toks[j + 1].lower()}"  # "15 percentage points": both words are the unit
            elif nxt in CURRENCY:
                unit, word = CURRENCY[nxt], nxt
            elif nxt in ("fold", "peryear"):
                unit, word = nxt, nxt
            elif j + 1 < len(toks) and (nxt, toks[j + 1].lower().rstrip("s")) in _TWO_WORD_UNITS:
                unit, word = _TWO_WORD_UNITS[nxt, toks[j + 1].lower().rstrip("s")], f"{nxt} {toks[j + 1].lower()}"
            elif _area(toks, j):  # the unit words: "square metres", "sq ft", "square-metre"
                unit, word = _area(toks, j), nxt if "-" in nxt else f"{nxt} {toks[j + 1].lower()}"
            else:
                unit = unit_of(toks[j])
                word = nxt if unit else ""
        before = [w.lower() for w in toks[max(0, i - 3): i] if w.lower() not in CURRENCY][-2:]
        # "to" makes a bound or a range only after "up" or a number ("up to 40", "30 to 40"): not "rises to 2,914"
        hedged = any(w in HEDGES or (w in RANGE_WORDS and (w != "to" or k and (before[k - 1] == "up" or
                                                                              before[k - 1][:1].isdigit())))
                     for k, w in enumerate(before))
        bound = _bound(before)
        if not bound:  # "below the recommended 30 g", "above the legal 0.5 mg": a bound over a named limit
            named = " ".join(w.lower() for w in toks[max(0, i - 4): i])
            far = re.search(r"\b(below|under|above|over|beyond|exceeding)\s+(?:the|a|its|their)\s+[a-z-]+$", named)
            bound = _bound([far.group(1)]) if far else ""
        out.append(Quantity(value, unit, t, hedged, word, bound))
        at.append(i)
    return _compounds(_ranges(out, at, toks), at, toks)


_TIME_UNITS = ("second", "minute", "hour", "day", "week")


def _compounds(found: list[Quantity], at: list[int], toks: list[str]) -> list[Quantity]:
    """'30 minutes 41 seconds', '1 hour and 50 minutes': one duration, in the smaller unit (so 'under 30 minutes'
    is not read off a time of 30:41, nor '1 hour' off 1 hour 50 minutes)."""
    out: list[Quantity] = []
    k = 0
    while k < len(found):
        a = found[k]
        b = found[k + 1] if k + 1 < len(found) else None
        gap = at[k + 1] - at[k] if b is not None else 0
        if (b is not None and a.unit in _TIME_UNITS and b.unit in _TIME_UNITS
                and _TIME_UNITS.index(b.unit) < _TIME_UNITS.index(a.unit)
                and (gap == 2 or gap == 3 and toks[at[k] + 2].lower() == "and")):
            first = _in_unit(a, b.unit)
            if first is not None:
                out.append(Quantity(first + b.value, b.unit, a.text, a.hedged or b.hedged,
                                    f"{a.unit_word} {b.unit_word}".strip(), a.bound))
                k += 2
                continue
        out.append(a)
        k += 1
    return out


def _area(toks: list[str], j: int) -> str:
    """An area after a number: '142 square metres', '510-square-metre', '2 sq km' -> 'meter ** 2' (pint)."""
    nxt = toks[j].lower()
    if nxt in ("square", "sq") and j + 1 < len(toks):
        length = unit_of(toks[j + 1])
    elif nxt.startswith(("square-", "sq-")):
        length = unit_of(nxt.split("-", 1)[1])
    else:
        return ""
    return f"{length} ** 2" if length and _ureg().parse_units(length).dimensionality == {"[length]": 1} else ""


CLOCK = "clock"  # the unit of a time of day, in minutes since midnight

_LOWER = frozenset(["over", "above", "exceeding", "exceeds", "beyond", "least", "upwards"])
BOUND_WORDS = frozenset(["over", "above", "under", "below", "beyond"])  # a bound before a figure, not a place
_UPPER = frozenset(["under", "below", "within", "most", "maximum", "max", "capped", "up"])
_COMPARATIVE_UP = frozenset(["more", "greater", "higher", "longer", "larger", "bigger", "older"])
_COMPARATIVE_DOWN = frozenset(["less", "fewer", "lower", "shorter", "smaller", "younger"])


def _bound(before: list[str]) -> str:
    """The bound the words before a number set: 'more than 40' / 'at least 40' (lower), 'up to 40' / 'under 40'
    / 'less than 40' (upper)."""
    if len(before) == 2 and before[1] == "than":
        return "lower" if before[0] in _COMPARATIVE_UP else "upper" if before[0] in _COMPARATIVE_DOWN else ""
    if len(before) == 2 and before == ["up", "to"]:
        return "upper"
    last = before[-1] if before else ""
    return "lower" if last in _LOWER else "upper" if last in _UPPER else ""


def matches(claim: Quantity, source: Quantity) -> bool:
    """The source's figure is the claim's, or within the bound the claim states: 'more than twice' holds for
    '2.3-fold', 'under 5%' for '3%'. Opposite bounds on one figure are not the same ('more than 5%' against
    'less than 5%')."""
    if claim.bound and source.bound and claim.bound != source.bound:
        return False
    if claim.bound and not source.bound and not source.hedged and _outside(claim, source):
        return False  # "under 30 minutes" is not 30 minutes 41 seconds, however close
    if same_quantity(claim, source):
        return True
    # only a figure satisfies a bound: "up to 3 days" is not "up to 2 days" (each names the limit)
    if not claim.bound or source.bound or not comparable(claim, source) or bool(claim.unit) != bool(source.unit):
        return False  # a bare "more than 6" (tablets) says nothing of "24 hours"
    if CLOCK in (claim.unit, source.unit) or "%" in (claim.unit, source.unit) and claim.unit != source.unit:
        return False
    value = _in_unit(source, claim.unit or source.unit)
    if value is None:
        return False
    if source.hedged:  # "around 19 g" is below 30 g; "about 29 g" may not be
        return value >= 1.1 * claim.value if claim.bound == "lower" else value <= 0.9 * claim.value
    return value >= claim.value if claim.bound == "lower" else value <= claim.value


def _outside(claim: Quantity, source: Quantity) -> bool:
    """The source's exact figure lies on the wrong side of the claim's bound."""
    if not comparable(claim, source) or bool(claim.unit) != bool(source.unit) or CLOCK in (claim.unit, source.unit) \
            or "%" in (claim.unit, source.unit) and claim.unit != source.unit:
        return False
    value = _in_unit(source, claim.unit or source.unit)
    if value is None:
        return False
    slack = 1e-6 * max(1.0, abs(claim.value))
    return value > claim.value + slack if claim.bound == "upper" else value < claim.value - slack


def _ranges(found: list[Quantity], at: list[int], toks: list[str]) -> list[Quantity]:
    """'90 to 100 cm', '10-12 hours', 'between 900 and 1000 mm': the first number of a range has the unit of the
    second."""
    out = list(found)
    for k in range(len(found) - 1):
        a, b = found[k], found[k + 1]
        # a year before "to" is no end of a range of the next figure's unit: "from 63% in 2023 to 68%"
        if not a.unit and b.unit and at[k + 1] - at[k] == 2 and toks[at[k] + 1].lower() in ("to", "-", "and") \
                and not is_year_text(a.text):
            out[k] = Quantity(a.value, b.unit, a.text, True, b.unit_word)
    return out


def comparable(a: Quantity, b: Quantity) -> bool:
    """Two quantities that measure the same kind of thing (a bare number compares with anything)."""
    if CLOCK in (a.unit, b.unit):
        return a.unit == b.unit
    if not a.unit or not b.unit or a.unit == b.unit:
        return True
    if a.unit.isupper() or b.unit.isupper() or "%" in (a.unit, b.unit):
        return False
    try:
        reg = _ureg()
        return bool(reg.Quantity(1, a.unit).dimensionality == reg.Quantity(1, b.unit).dimensionality)
    except Exception:
        return False


ARITHMETIC_CUES = frozenset(["by", "after", "later", "earlier", "before", "ago", "more", "less", "fewer", "longer",
                             "shorter", "difference", "total", "combined", "altogether", "sum", "increase",
                             "decrease", "rise", "fall", "drop", "gain", "grow", "cut", "higher", "lower", "than",
                             "extra", "additional", "remaining", "left", "rest", "from"])


def derived(q: Quantity, pool: Sequence[Quantity], words: Iterable[str]) -> str | None:
    """How the claim's quantity `q` follows from two of the source's (`pool`), or None: a ratio, a time of day
    moved by a duration, a share of two figures, or a sum, difference or percentage of a whole (each in its own
    function below). Arithmetic that only a cue word licenses ('rose by 15', 'eleven years after 1792', 'an hour
    later') needs that cue in the claim."""
    cue = bool(set(words) & ARITHMETIC_CUES)
    if q.unit == "fold":
        return _ratio_of(q, pool)
    if q.unit == CLOCK:
        return _clock_shift(q, pool) if cue else None
    span = _clock_span(q, pool)
    if span:
        return span
    if q.unit == "%" and not q.bound:
        share = _share_of(q, pool) or _percent_more(q, pool, words)
        if share:
            return share
    return _pairwise(q, pool, cue) or _quotient(q, pool)


_MORE_WORDS = frozenset(["larger", "bigger", "higher", "greater", "longer", "heavier", "wider", "taller", "more"])
_LESS_WORDS = frozenset(["smaller", "lower", "shorter", "lighter", "narrower", "less", "fewer"])


def _percent_more(q: Quantity, pool: Sequence[Quantity], words: Iterable[str]) -> str | None:
    """"roughly 40% larger than Earth's" from "1.4 times Earth's radius": a percentage more (or less) is a multiple."""
    said = set(words)
    sign = 1 if said & _MORE_WORDS else -1 if said & _LESS_WORDS else 0
    for a in pool:
        if sign and a.unit == "fold" and _close(1 + sign * q.value / 100, a.value, q.hedged):
            return f"{a.text} fold"
    return None


def _quotient(q: Quantity, pool: Sequence[Quantity]) -> str | None:
    """"800 MWh of storage would last four hours" at "200 MW": one figure divided by another gives the claim's,
    in the claim's own dimension (a figure without a unit, a share or a currency never does)."""
    if not q.unit or q.unit in (CLOCK, "%", "fold", "peryear") or q.unit.isupper():
        return None
    reg = _ureg()
    for a, b in _pairs(pool):
        if not a.unit or not b.unit or a.unit == b.unit or {a.unit, b.unit} & {CLOCK, "%", "fold", "peryear"} \
                or a.unit.isupper() or b.unit.isupper() or not a.value or not b.value:
            continue
        for x, y in ((a, b), (b, a)):
            try:
                value = float((reg.Quantity(x.value, x.unit) / reg.Quantity(y.value, y.unit)).to(q.unit).magnitude)
            except Exception:
                continue
            if _close(q.value, value, q.hedged):
                return f"{x.text} / {y.text}"
    return None


def _pairs(pool: Sequence[Quantity]) -> Iterator[tuple[Quantity, Quantity]]:
    for i, a in enumerate(pool):
        for b in pool[i + 1:]:
            yield a, b


def _ratio_of(q: Quantity, pool: Sequence[Quantity]) -> str | None:
    """"tripled, from two weeks to six", "more than twice as much as wind (21%)": a ratio of two figures."""
    for a, b in _pairs(pool):
        if a.unit == "fold" or b.unit == "fold" or not comparable(a, b) or CLOCK in (a.unit, b.unit):
            continue
        x, y = _in_unit(a, a.unit or b.unit), _in_unit(b, a.unit or b.unit)
        if x and y and matches(q, Quantity(max(x, y) / min(x, y), "fold", "ratio")):
            return f"{max(a.text, b.text, key=float)} / {min(a.text, b.text, key=float)}"
    return None


def _clock_shift(q: Quantity, pool: Sequence[Quantity]) -> str | None:
    """"issued at 04:10, lifted an hour later" -> 05:10: a time of day of the source moved by one of its durations."""
    shifts = _minutes(pool)
    times = [a.value + sign * d for a in pool if a.unit == CLOCK for d in shifts for sign in (1, -1)]
    if any(_close(q.value, v % 1440, q.hedged) for v in times):
        return "a time and a duration of the source"
    return None


def _clock_span(q: Quantity, pool: Sequence[Quantity]) -> str | None:
    """"applies for five hours" from "between midnight and 5 am", "open 8 hours" from "09:00 to 17:00": a duration
    between two times of day the source gives one after the other."""
    minutes = in_minutes(q)
    if minutes is None:
        return None
    times = [a for a in pool if a.unit == CLOCK]
    for a, b in zip(times, times[1:], strict=False):
        if _close(minutes, (b.value - a.value) % 1440, q.hedged):
            return f"{b.text} - {a.text}"
    return None


def _share_of(q: Quantity, pool: Sequence[Quantity]) -> str | None:
    """"half the daytime rate" (6p of 12p), "8% of the 1,200 staff" (96 of 1,200): one figure as a share of another."""
    for a, b in _pairs(pool):
        if "%" in (a.unit, b.unit) or CLOCK in (a.unit, b.unit) or a.unit != b.unit or not a.value or not b.value:
            continue
        small, large = sorted((a.value, b.value))
        if _close(q.value, 100 * small / large, q.hedged):
            return f"{small:g} of {large:g}"
    return None


def _pairwise(q: Quantity, pool: Sequence[Quantity], cue: bool) -> str | None:
    """Percentage points between two shares ("down 15 points" from 46% to 31%), a percentage of a whole (30% of
    1,200 = 360), a compound duration (1 hour 50 minutes = 110 minutes), a sum or difference the claim cues."""
    for a, b in _pairs(pool):
        if a.unit == b.unit == q.unit == "%" and cue and _equal(q, abs(a.value - b.value), "%"):
            return f"{max(a.value, b.value):g}% - {min(a.value, b.value):g}%"
        if a.unit == "%" or b.unit == "%":
            share, whole = (a, b) if a.unit == "%" else (b, a)
            if whole.unit != "%" and _equal(q, whole.value * share.value / 100, whole.unit or q.unit):
                return f"{share.text}% of {whole.text}"
            continue
        if not (comparable(a, q) and comparable(b, q) and comparable(a, b)):
            continue
        unit = q.unit or a.unit or b.unit
        x, y = _in_unit(a, unit), _in_unit(b, unit)
        if x is None or y is None:
            continue
        compound = bool(a.unit and b.unit and a.unit != b.unit)  # "1 hour 50 minutes"
        if (cue or compound) and _equal(q, x + y, unit):
            return f"{a.text} + {b.text}"
        if cue and _equal(q, abs(x - y), unit):
            return f"{max(a.text, b.text, key=float)} - {min(a.text, b.text, key=float)}"
    return None


def in_minutes(d: Quantity) -> float | None:
    """A duration in minutes (None for a time of day, a share, a currency or a figure without a time unit)."""
    if not d.unit or d.unit in (CLOCK, "%") or d.unit.isupper():
        return None
    return _in_unit(d, "minute")


def close_to(q: Quantity, value: float) -> bool:
    return _close(q.value, value, q.hedged)


def _minutes(pool: Sequence[Quantity]) -> list[float]:
    return [m for m in map(in_minutes, pool) if m is not None]


def in_unit(a: Quantity, unit: str) -> float | None:
    """The quantity's value in `unit` (None where it does not convert)."""
    return _in_unit(a, unit)


def _in_unit(a: Quantity, unit: str) -> float | None:
    if not a.unit or not unit or a.unit == unit:
        return a.value
    try:
        return float(_ureg().Quantity(a.value, a.unit).to(unit).magnitude)
    except Exception:
        return None


def _equal(q: Quantity, value: float, unit: str) -> bool:
    return bool(same_quantity(q, Quantity(value, unit if q.unit else "", f"{value:g}")))
