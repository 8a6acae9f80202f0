"""Which table, which column(s), which rows: deterministic matching of the question's words against headers.

The question's content words (lemmatised, with the abbreviations tables use: 'No.' = number, '%' = percent)
are matched against each numeric column's header. The columns with the best match are the series; the
label column (the first that is not a serial number) is the x axis. A table is refused when no value column
matches a word of the question that is specific to it, or when the question names something (a measure, a
subject) that appears nowhere in the table or on its page: a chart of another quantity is worse than none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.charts import numbers
from assistant.charts.tables import Table
from assistant.entailment.text import lemma
from assistant.prompting import STOPWORDS

_CHART = """plot plotting chart graph draw show visualize visualise visualization display compare
comparison bar bars line lines pie trend trends series table tables data value values figure over across per each
every give make create versus vs against report document documents listed list shown please using use based
breakdown distribution how what which the from for of in by and between through until since during within among
along including include only also latest recent past"""
CHART_WORDS = frozenset(_CHART.split())
# words a request uses for its axis or its verb ('by size', 'paid to', 'held by'): matched when a header has them,
# never required
_SOFT = ("monthly annual yearly quarterly decade decades over time size range type kind group category class bracket "
         """level wise split pay paid hold held declare declared
receive received attend get take record report give spend make company firm organisation organization""")
SOFT = frozenset(_SOFT.split())
# header words that say little about which quantity a column holds
_GENERIC = """number total percent amount value year month date count rate share figure no nos
average level quantity"""
GENERIC = frozenset(_GENERIC.split())
# a closed list of the words reports and statements use for the same quantity (both directions)
_SYNONYM_GROUPS = ("revenue sale turnover", "profit earnings income", "price quote", "employee staff headcount",
                   "cost expense expenditure spending", "population inhabitant", "salary wage",
                   "shareholder stockholder", "dividend payout")
SYNONYMS = {w: frozenset(g.split()) - {w} for g in _SYNONYM_GROUPS for w in g.split()}
_ALIASES = {"no": "number", "nos": "number", "num": "number", "#": "number", "%": "percent", "percentage": "percent",
            "pct": "percent", "yr": "year", "yrs": "year", "avg": "average", "qty": "quantity", "amt": "amount",
            "mths": "month", "mth": "month", "fy": "year"}
_SERIAL = re.compile(r"^(?:sl\.?|s\.?|sr\.?|serial)?\s*no\.?$|^#$|^sl\.?$", re.I)
_TOTAL = re.compile(r"^(?:sub[\s-]*total|grand\s+total|total|difference|net\s+total)\b", re.I)
_WORD = re.compile(r"%|#|[A-Za-z][A-Za-z'’.-]*")
_TIME = re.compile(r"^(?:(?:q[1-4]|h[12]|fy)\s*)?'?(?:1[6-9]|2[01])?\d{2}(?:\s*[-/–]\s*\d{2,4})?$|"
                   r"^(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?(?:[\s,'-]+\d{2,4})?$|"
                   r"^\d{4}\s+(?:q[1-4]|h[12])$|^(?:q[1-4]|h[12])\s+\d{4}$", re.I)


@dataclass(frozen=True)
class Selection:
    table: Table
    x_col: int
    value_cols: tuple[int, ...]
    rows: tuple[int, ...]  # indexes into table.rows
    score: float
    reason: str = ""  # why nothing was selected (empty when value_cols is not)
    transposed: bool = False  # the series are rows (a year per column); `rows` are the series, `value_cols` the x


def terms(text: str) -> set[str]:
    """Lemmatised content words with table abbreviations resolved ('No. of Shareholders' -> number, shareholder)."""
    out = set()
    for raw in _WORD.findall(text.replace("’", "'")):
        w = re.sub(r"'s$", "", raw.lower()).strip(".'-")
        w = _ALIASES.get(w, w)
        for part in w.split("-") if "-" in w and not re.search(r"\d", w) else [w]:
            if len(part) < 2 and part not in ("%", "#") or part in STOPWORDS:
                continue
            lem = lemma(part) if part.isalpha() else part
            out.add(_ALIASES.get(lem, lem))
    return out


def _loose(term: str) -> str:
    """For 'does the table mention it at all': monthly = month, shareholding = sharehold."""
    t = re.sub(r"(?:ly|ing|ings|s)$", "", term)
    return t[:6]


def question_terms(question: str) -> set[str]:
    return {t for t in terms(question) if t not in CHART_WORDS}


_REQUEST = re.compile(r"^\s*(?:please\s+|can you\s+|could you\s+)?(?:plot|chart|graph|visuali[sz]e|draw)\b|"
                      r"\b(?:as|in)\s+an?\s+(?:bar|line|column|pie)?\s*(?:chart|graph|plot)\b|"
                      r"\b(?:bar|line|column|pie)\s+(?:chart|graph|plot)\b|"
                      r"^\s*(?:make|create|give me|show me|draw)\s+an?\s+(?:chart|graph|plot)\b", re.I)


def is_chart_request(text: str) -> bool:
    """'Plot revenue by year', 'Show X as a bar chart', 'bar chart of Y': the user asks for a chart (not a
    question that mentions one, such as 'What does the chart on page 3 show?')."""
    return bool(_REQUEST.search(text))


def is_time(label: str) -> bool:
    return bool(_TIME.match(label.strip()))


def select(table: Table, question: str) -> Selection:
    q = question_terms(question) | acronyms(question)
    headers = [terms(c) for c in table.columns]
    for j in range(1, len(headers)):  # a bare '%' column is the share of the column to its left
        if headers[j] and headers[j] <= {"percent"} and headers[j - 1]:
            headers[j] = headers[j] | headers[j - 1]
    x_col = _x_column(table, q, headers, question)
    value_cols = [j for j in range(len(table.columns)) if j != x_col and _is_numeric(table, j)
                  and not _SERIAL.match(table.columns[j].strip()) and not _is_serial(table, j)]
    if x_col < 0 or not value_cols:
        return Selection(table, x_col, (), (), 0.0, "the table has no label column and number columns")
    labels = set().union(*(terms(r[x_col].text) for r in table.rows))
    everywhere = set().union(*headers, labels, terms(table.section), terms(table.context), terms(table.doc))
    near = set().union(*headers, labels, terms(table.section), terms(table.intro))
    names = _names(question) | acronyms(question)
    unmatched = sorted(t for t in q - names - SOFT - GENERIC if not _found(t, everywhere))
    scores = {j: _score(q, headers[j] - headers[x_col]) + _unit_fit(q, table.columns[j]) for j in value_cols}
    best = max(scores.values())
    chosen = [j for j in value_cols if scores[j] == best and best > 0]
    specific = q - GENERIC - names - SOFT
    titled = set().union(*headers, labels, terms(table.intro))
    if not chosen:
        flipped = _transposed(table, q, names, x_col, value_cols, everywhere, near, year_range(question))
        counts = [j for j in value_cols if numbers.header_unit(table.columns[j]).unit != "%"]
        # 'complaints by type' names the table, not its one count column: taken only when every specific
        # word of the request is in the table's headers, labels or title, and the table has one count column
        if flipped is None and len(counts) == 1 and specific and all(_found(t, titled) for t in specific) \
                and not unmatched and headers[x_col] & q:
            chosen = counts
        else:
            return flipped or Selection(table, x_col, (), (), 0.0, "no column of the table matches the question")
    in_cols = (q - GENERIC) & expand(set().union(*(headers[j] for j in chosen)))
    if not in_cols and any(headers[j] - GENERIC - expand(q) - headers[x_col] for j in chosen if scores[j] > 0):
        return Selection(table, x_col, (), (), best, "the matching column is about something the request does not name")
    vague = sorted(t for t in specific - in_cols if not _found(t, near))
    # a column matched on generic words only ('number of employees' against 'No. of Directors') must have
    # the rest of the question around the table; one stray word is forgiven when two specific words match
    if (vague and len(in_cols) < 2) or len(unmatched) > (1 if len(in_cols) >= 2 else 0):
        return Selection(table, x_col, (), (), best, f"nothing in the table is about {', '.join(vague or unmatched)}")
    rows = _rows(table, x_col, question)
    coverage = len(q & everywhere) / max(1, len(q))
    x_named = 0.5 if headers[x_col] & q else 0.0
    # names (capitalised words: 'Audit Committee', 'NSE') pick columns inside a table; between tables they
    # count where the table is introduced, so a column header does not outvote the table's own title
    plain = max(_score(q, headers[j] - headers[x_col], names) for j in chosen)
    section = terms(table.section)
    named = sum(1.0 if _found(t, titled) else 0.6 if _found(t, section) else 0.3
                for t in names if _found(t, everywhere))
    score = 2 * plain + coverage + x_named + named - len(unmatched) - 0.5 * len(vague)
    return Selection(table, x_col, tuple(chosen[:6]), rows, score)


_TIME_WORDS = frozenset(["year", "yearly", "annual", "annually", "month", "monthly", "quarter", "quarterly", "period",
                         "date", "fiscal", "time", "trend"])


def _transposed(table: Table, q: set[str], names: set[str], x_col: int, value_cols: list[int],
                everywhere: set[str], near: set[str], span: tuple[int, int] | None = None) -> Selection | None:
    """A table with a year per column ('| | 2019 | 2020 | 2021 |', as financial statements print them): the row
    the question names is the series, the years are the x axis."""
    times = [j for j in value_cols if is_time(re.sub(r"\(.*?\)", "", table.columns[j]).strip())]
    if len(times) < 2:
        return None
    if span:
        times = [j for j in times if (y := _year_of(table.columns[j])) is not None and span[0] <= y <= span[1]] or times
    row_terms = {i: terms(r[x_col].text) for i, r in enumerate(table.rows) if r[x_col].text and r[x_col].known}
    scores = {i: _score(q - _TIME_WORDS, t) for i, t in row_terms.items()}
    best = max(scores.values(), default=0.0)
    if best <= 0:
        return None
    chosen = [i for i, v in scores.items() if v == best]
    q = q - _TIME_WORDS
    in_rows = (q - GENERIC) & expand(set().union(*(row_terms[i] for i in chosen)))
    unmatched = sorted(t for t in q - names - SOFT if not _found(t, everywhere))
    vague = sorted(t for t in q - GENERIC - names - SOFT - in_rows if not _found(t, near))
    if (vague and len(in_rows) < 2) or len(unmatched) > (1 if len(in_rows) >= 2 else 0):
        return Selection(table, x_col, (), (), best, f"nothing in the table is about {', '.join(vague or unmatched)}")
    coverage = len(q & everywhere) / max(1, len(q))
    return Selection(table, x_col, tuple(times), tuple(chosen[:6]), 2 * best + coverage - len(unmatched),
                     transposed=True)


def _unit_fit(q: set[str], header: str) -> float:
    """'percentage of shares' asks for the % column, not the count beside it."""
    if "percent" not in q:
        return 0.0
    return 1.0 if numbers.header_unit(header).unit == "%" else -0.5


def _found(term: str, words: set[str]) -> bool:
    words = expand(words)
    return term in words or _loose(term) in {_loose(w) for w in words}


def _score(q: set[str], header: set[str], leave_out: set[str] | None = None) -> float:
    """Question words the header has (generic ones count half; `leave_out` not at all; synonyms as themselves),
    less a little for each word it adds that the question does not ask for."""
    matched = sum(0.5 if t in GENERIC else 1.0 for t in (q - (leave_out or set())) & expand(header))
    return matched - 0.3 * len(header - expand(q)) if matched else 0.0


def expand(words: set[str]) -> set[str]:
    """The words with the synonyms reports use for them (revenue = sales = turnover, profit = income, ...)."""
    return words.union(*(SYNONYMS.get(w, ()) for w in words))


def acronyms(question: str) -> set[str]:
    """'National Stock Exchange' -> nse: tables abbreviate the names requests spell out."""
    runs = re.findall(r"(?:\b[A-Z][a-z]+\b(?:\s+(?:of\s+)?)?){2,}", question)
    out = set()
    for run in runs:
        words = [w for w in run.split() if w[0].isupper()]
        if len(words) >= 2:
            out.add("".join(w[0] for w in words).lower())
    return out


def _names(question: str) -> set[str]:
    """Capitalised words of the question after its first (a company, a place): whose table, not what to plot."""
    words = re.findall(r"[A-Za-z][A-Za-z'’.-]*", question)
    return set().union(*(terms(w) for w in words[1:] if w[:1].isupper()))


def _x_column(table: Table, q: set[str], headers: list[set[str]], question: str = "") -> int:
    """The label column: the one the request names after 'by', 'per', 'each' or 'across' when its header is
    made of those words, else the first column of labels that is not a serial number."""
    candidates = [j for j in range(len(table.columns)) if not _SERIAL.match(table.columns[j].strip())
                  and _labels(table, j) and (not _is_numeric(table, j) or _is_time_col(table, j))]
    if not candidates:
        return -1
    m = re.search(r"\b(?:by|per|each|every|across)\b(?!.*\b(?:by|per|each|every|across)\b)(.*)$", question, re.I)
    phrase = terms(m.group(1)) if m else set()
    named = [j for j in candidates if headers[j] and headers[j] & phrase and headers[j] <= phrase | GENERIC]
    return named[0] if named else candidates[0]


def _is_serial(table: Table, j: int) -> bool:
    """A column counting its rows (1, 2, 3, ...): numbering, not data."""
    values = [numbers.parse_cell(r[j].text) for r in table.rows if r[j].text]
    nums = [v.value for v in values if v is not None]
    return len(nums) >= 3 and len(nums) == len(values) and nums == [float(k) for k in range(1, len(nums) + 1)]


def _labels(table: Table, j: int) -> list[str]:
    return [r[j].text for r in table.rows if r[j].text]


def _is_time_col(table: Table, j: int) -> bool:
    labels = _labels(table, j)
    return bool(labels) and sum(is_time(v) for v in labels) >= 0.8 * len(labels)


def _is_numeric(table: Table, j: int) -> bool:
    cells = [r[j].text for r in table.rows if r[j].text and not _TOTAL.match(r[0].text or "")]
    if not cells:
        return False
    good = sum(1 for c in cells if numbers.parse_cell(c) is not None or numbers.is_missing(c))
    return good >= 0.6 * len(cells) and any(numbers.parse_cell(c) is not None for c in cells)


def _rows(table: Table, x_col: int, question: str) -> tuple[int, ...]:
    labelled = [i for i, r in enumerate(table.rows) if r[x_col].text or not r[x_col].known]
    kept = [i for i in labelled if not any(_TOTAL.match(c.text) for c in table.rows[i][:x_col + 1] if c.text)]
    kept = kept or labelled
    low = " " + re.sub(r"\s+", " ", question.lower()) + " "
    span = year_range(question)
    if span:
        ranged = [i for i in kept if (y := _year_of(table.rows[i][x_col].text)) is not None and span[0] <= y <= span[1]]
        if ranged:
            return tuple(ranged)
    named = [i for i in kept if len(table.rows[i][x_col].text) >= 3
             and f" {table.rows[i][x_col].text.lower()} " in low.replace(",", " ").replace("?", " ")]
    if len(named) >= 2:
        return tuple(named)
    return tuple(kept)


_SPAN = re.compile(r"\b((?:1[6-9]|20)\d{2})(?:[-–/]\d{2})?\s*(?:-|–|to|through|until|and)\s*((?:1[6-9]|20)\d{2})\b",
                   re.I)


def year_range(question: str) -> tuple[int, int] | None:
    """'from 1900 to 1950', 'between 2019 and 2023', '2019-2023': the years the request keeps."""
    m = _SPAN.search(question)
    if not m:
        return None
    lo, hi = sorted((int(m.group(1)), int(m.group(2))))
    return (lo, hi) if hi > lo else None


def select_rows(table: Table, x_col: int, question: str) -> tuple[int, ...]:
    """The rows a request keeps (totals out, a named year range or named rows only)."""
    return _rows(table, x_col, question)


def _year_of(label: str) -> int | None:
    m = re.search(r"\b((?:1[6-9]|20)\d{2})\b", label)
    return int(m.group(1)) if m else None
