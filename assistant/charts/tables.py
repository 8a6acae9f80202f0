"""Tables as the chart stage reads them: the markdown a table chunk stores, back to header labels and rows.

PDF tables without rules between rows come out of ingest as one row whose cells stack every row's values
('1870 1880 1890' | '130 8,267 14,096'). Such a row is separated again here when its number cells agree on how
many values they hold and its label cells can be split into as many labels (one word each, months under year
markers, a repeated leading word such as 'Mr.', or equal groups with the same shape such as 'April 2002').
A row that cannot be separated is kept whole and reported, never guessed.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from assistant.charts import numbers
from ingest.types import BoxTuple

_MONTH_NAMES = ("january february march april may june july august september october november december "
           "jan feb mar apr jun jul aug sep sept oct nov dec")
_MONTHS = frozenset(_MONTH_NAMES.split())
_YEAR = re.compile(r"^(?:1[6-9]|2[01])\d{2}$")


@dataclass(frozen=True)
class Cell:
    """One logical cell, with where it lives in the stored table: the chunk row id, the markdown row and
    column, and which of a stacked cell's values it is (part -1: the whole cell)."""

    text: str
    chunk: int
    row: int
    col: int
    part: int = -1
    known: bool = True  # False when the stacked cell it belongs to could not be separated


@dataclass(frozen=True)
class Table:
    doc: str
    doc_id: str
    page: int
    bbox: BoxTuple | None
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    chunk_ids: tuple[int, ...] = ()
    section: str = ""
    notes: tuple[str, ...] = ()
    context: str = ""  # the text of the page the table is on (captions, the sentence that introduces it)
    search_rank: int = 0
    source_path: str | None = None
    intro: str = ""  # the text printed just above the table (its title)

    @property
    def key(self) -> tuple[str, int, tuple[float, ...] | None]:
        return (self.doc_id, self.page, self.bbox)

    def describe(self) -> str:
        head = ", ".join(c for c in self.columns if c)[:120]
        return f"{self.doc} p.{self.page}: table with columns {head}"


@dataclass
class _Source:
    chunk: int
    rows: list[list[str]] = field(default_factory=list)


def split_markdown(text: str) -> list[list[str]]:
    """The rows of a GitHub markdown table (escaped pipes kept in their cell), without the separator row."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip("|"))]
        if all(re.fullmatch(r":?-{3,}:?", c) for c in cells if c) and any(cells):
            continue
        out.append(cells)
    return out


def from_markdown(chunks: list[tuple[int, str]], *, doc: str, doc_id: str, page: int,
                  bbox: BoxTuple | None, section: str = "", context: str = "",
                  search_rank: int = 0, source_path: str | None = None) -> Table | None:
    """A Table from the markdown of one or more chunks (a long table is stored in several, each repeating the
    header row)."""
    parts = [(cid, split_markdown(text)) for cid, text in chunks]
    parts = [(cid, rows) for cid, rows in parts if rows]
    if not parts:
        return None
    # later chunks repeat only the first header row; a second header row may sit alone in the first chunk
    located = [(cid, i, cells) for k, (cid, md) in enumerate(parts) for i, cells in enumerate(md) if k == 0 or i > 0]
    width = max(len(cells) for _, _, cells in located)
    padded = [(cid, i, cells + [""] * (width - len(cells))) for cid, i, cells in located]
    n_head = _header_rows([cells for _, _, cells in padded])
    columns = _column_labels([cells for _, _, cells in padded[:n_head]])
    rows: list[tuple[Cell, ...]] = []
    notes: list[str] = []
    for cid, i, cells in padded[n_head:]:
        logical, note = _unstack(cid, i, cells)
        rows.extend(logical)
        if note:
            notes.append(note)
    return Table(doc, doc_id, page, bbox, tuple(columns), tuple(rows), tuple(c for c, _ in parts), section,
                 tuple(notes), context, search_rank, source_path)


def _header_rows(rows: list[list[str]]) -> int:
    """The first row, and up to two more that hold labels only (a second level: 'Physical | Demat | Total')."""
    n = 1
    while n < min(3, len(rows) - 1):
        row = rows[n]
        if not any(row) or any(numbers.tokens(c) for c in row if c) or (row[0] and not any(row[1:])):
            break
        n += 1
    return n


def _column_labels(header: list[list[str]]) -> list[str]:
    filled = [list(r) for r in header]
    for level in range(len(filled) - 1):  # a spanning top label covers the empty cells to its right
        last = ""
        for j, cell in enumerate(filled[level]):
            if cell:
                last = cell
            elif last and any(filled[k][j] for k in range(level + 1, len(filled))):
                filled[level][j] = last
    width = len(filled[0])
    labels = [" ".join(r[j] for r in filled if r[j]).strip() for j in range(width)]
    if len(filled) > 1:  # '| Physical | % | Demat | % |' under one label: each % is the share of its left neighbour
        bottom = filled[-1]
        for j in range(1, width):
            if bottom[j].strip("() ") == "%" and bottom[j - 1] and bottom[j - 1].strip("() ") != "%":
                labels[j] = f"{labels[j - 1]} %"
    return labels


def _unstack(cid: int, i: int, cells: list[str]) -> tuple[list[tuple[Cell, ...]], str]:
    toks = [numbers.tokens(c) if c else [] for c in cells]
    counts = [len(t) for t in toks if len(t) > 1]
    if not counts:
        return [tuple(Cell(c, cid, i, j) for j, c in enumerate(cells))], ""
    n = max(Counter(counts).items(), key=lambda kv: (kv[1], kv[0]))[0]
    columns: list[list[Cell]] = []
    failed = []
    for j, (cell, tk) in enumerate(zip(cells, toks, strict=True)):
        if tk and len(tk) == n and _one_kind(tk):
            columns.append([Cell(t, cid, i, j, p) for p, t in enumerate(tk)])
            continue
        labels = None if tk else split_labels(cell, n)
        if labels is not None:
            columns.append([Cell(t, cid, i, j, p) for p, t in enumerate(labels)])
        else:
            if cell:
                failed.append(j)
            columns.append([Cell("", cid, i, j, p, known=not cell) for p in range(n)])
    rows = [tuple(col[p] for col in columns) for p in range(n)]
    note = f"row {i} stacks {n} rows whose cells in columns {failed} could not be separated" if failed else ""
    return rows, note


def _one_kind(tokens: list[str]) -> bool:
    """The values of a stacked cell share a unit ('86 21%' is a count and a share, not two rows)."""
    units = {v.unit for v in (numbers.parse_cell(t) for t in tokens) if v is not None}
    return len(units) <= 1


def split_labels(text: str, n: int) -> list[str] | None:
    """n row labels from a cell that stacks them, or None when the split would be a guess."""
    toks = text.split()
    if len(toks) == n:
        return toks
    if len(toks) % n == 0 and len(toks) > n:
        g = len(toks) // n
        groups = [toks[k * g:(k + 1) * g] for k in range(n)]
        shapes = {tuple(_shape(t) for t in grp) for grp in groups}
        if len(shapes) == 1 and "9" in next(iter(shapes)):
            return [" ".join(grp) for grp in groups]
    if len(toks) > n and _YEAR.match(toks[0]):  # '2006 APRIL MAY ... 2007 JANUARY ...': months under years
        year, months = "", []
        for t in toks:
            if _YEAR.match(t):
                year = t
            elif t.lower().strip(".,") in _MONTHS:
                months.append(f"{t} {year}")
            else:
                return None
        if len(months) == n:
            return months
    first = toks[0] if toks else ""
    if first and not first[0].isdigit() and toks.count(first) == n:
        out: list[str] = []
        current: list[str] = []
        for t in toks:
            if t == first and current:
                out.append(" ".join(current))
                current = []
            current.append(t)
        out.append(" ".join(current))
        return out
    return None


def _shape(token: str) -> str:
    return "9" if re.fullmatch(r"[\d.,/-]+", token) else "a"
