"""Separating stacked rows by where their words sit on the page, when their text alone cannot say.

A label cell such as 'Executive Directors Non-Executive Independent Directors Other Non-Executive Directors'
holds three labels; which words belong together is only visible on the page: each value of the stacked number
cell sits on its own text line, and each label line belongs to the value line it shares a baseline with (a
wrapped label's other lines join the label above or below, as the table aligns them). Used only while the
source PDF is on disk; a row whose lines do not line up stays unseparated.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from statistics import median
from typing import Any

from assistant.charts import numbers
from assistant.charts.tables import Cell, Table
from ingest.types import BoxTuple

Word = tuple[float, float, float, float, str]


def separate_rows(table: Table) -> Table:
    """The table with the labels of stacked rows filled in from the page, where the lines line up."""
    stuck = {(c.chunk, c.row) for r in table.rows for c in r if not c.known}
    path = table.source_path
    if not stuck or not table.bbox or not path or Path(path).suffix.lower() != ".pdf" or not Path(path).is_file():
        return table
    try:
        cells = _page_cells(path, table)
    except Exception:  # a changed or damaged file: the rows stay as they were
        return table
    if not cells:
        return table
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, row in enumerate(table.rows):
        if row and (row[0].chunk, row[0].row) in stuck:
            groups[(row[0].chunk, row[0].row)].append(i)
    rows = list(table.rows)
    for indexes in groups.values():
        fixed = _fix_group([rows[i] for i in indexes], cells)
        if fixed is not None:
            for i, row in zip(indexes, fixed, strict=True):
                rows[i] = row
    return replace(table, rows=tuple(rows))


def text_above(path: str | None, page: int, bbox: BoxTuple | None,
               height: float = 72.0) -> str:
    """The words printed just above a table (its title, the sentence introducing it), from the PDF."""
    if not path or not bbox or Path(path).suffix.lower() != ".pdf" or not Path(path).is_file():
        return ""
    import pymupdf

    try:
        with pymupdf.open(path) as doc:
            if doc.needs_pass or page > doc.page_count:
                return ""
            clip = pymupdf.Rect(bbox[0] - 20, max(0.0, bbox[1] - height), bbox[2] + 20, bbox[1] + 1)
            return str(doc[page - 1].get_text("text", clip=clip))
    except Exception:  # a changed or damaged file: no introduction, the headers still speak
        return ""


def _page_cells(path: str, table: Table) -> list[list[list[Word]]]:
    """Rows of cells of the ruled table inside the bbox, each cell as its words."""
    import pymupdf

    assert table.bbox is not None
    getattr(pymupdf, "no_recommend_layout", lambda: None)()  # PyMuPDF prints an ad on stdout, which --json owns
    with pymupdf.open(path) as doc:
        page = doc[table.page - 1]
        clip = pymupdf.Rect(*table.bbox) + (-2, -2, 2, 2)
        words = [(w[0], w[1], w[2], w[3], str(w[4])) for w in page.get_text("words", clip=clip)]
        try:
            found = page.find_tables(clip=clip, use_layout=False)
        except TypeError:
            found = page.find_tables(clip=clip)
        out = []
        for t in found.tables:
            for row in t.rows:
                out.append([[w for w in words if cell and _inside(w, cell)] for cell in row.cells])
        return out


def _inside(w: Word, cell: Any) -> bool:
    cx, cy = (w[0] + w[2]) / 2, (w[1] + w[3]) / 2
    return bool(cell[0] <= cx <= cell[2] and cell[1] <= cy <= cell[3])


def _fix_group(rows: list[tuple[Cell, ...]], page_rows: list[list[list[Word]]]) -> list[tuple[Cell, ...]] | None:
    n = len(rows)
    anchor_col = next((j for j, c in enumerate(rows[0]) if c.known and c.part >= 0 and numbers.tokens(c.text)), None)
    if anchor_col is None:
        return None
    want = [r[anchor_col].text for r in rows]
    for cells in page_rows:
        if anchor_col >= len(cells) or len(cells) != len(rows[0]):
            continue
        lines = _lines(cells[anchor_col])
        if [" ".join(w[4] for w in line) for line in lines] != want:
            continue
        anchors = [median((w[1] + w[3]) / 2 for w in line) for line in lines]
        height = median(w[3] - w[1] for line in lines for w in line)
        out = [list(r) for r in rows]
        for j in range(len(rows[0])):
            if rows[0][j].known:
                continue
            labels = _assign(_lines(cells[j]), anchors, height)
            if labels is None:
                continue  # this column stays unseparated; the others need not
            for p in range(n):
                out[p][j] = replace(rows[p][j], text=labels[p], known=True)
        return [tuple(r) for r in out]
    return None


def _lines(words: list[Word]) -> list[list[Word]]:
    """Words grouped into text lines by their vertical centre, top to bottom, each left to right."""
    out: list[list[Word]] = []
    for w in sorted(words, key=lambda w: ((w[1] + w[3]) / 2, w[0])):
        cy = (w[1] + w[3]) / 2
        if out and abs(cy - (out[-1][0][1] + out[-1][0][3]) / 2) <= 0.4 * (w[3] - w[1]):
            out[-1].append(w)
        else:
            out.append([w])
    return [sorted(line, key=lambda w: w[0]) for line in out]


def _assign(lines: list[list[Word]], anchors: list[float], height: float) -> list[str] | None:
    """Each label line to the value line it shares a baseline with; wrapped lines to their neighbour."""
    if not lines:
        return None
    owner: list[int | None] = []
    for line in lines:
        cy = median((w[1] + w[3]) / 2 for w in line)
        k = min(range(len(anchors)), key=lambda a: abs(anchors[a] - cy))
        owner.append(k if abs(anchors[k] - cy) <= 0.5 * height else None)
    if owner[0] is None and owner[-1] is None:
        return None
    top_aligned = owner[0] is not None
    resolved: list[int | None] = list(owner)
    order = range(len(lines)) if top_aligned else range(len(lines) - 1, -1, -1)
    last: int | None = None
    for i in order:
        if resolved[i] is None:
            resolved[i] = last
        last = resolved[i]
    texts: list[list[str]] = [[] for _ in anchors]
    for line, owner_k in zip(lines, resolved, strict=True):
        if owner_k is None:
            return None
        texts[owner_k].append(" ".join(w[4] for w in line))
    if any(not t for t in texts):
        return None
    return [" ".join(t) for t in texts]
