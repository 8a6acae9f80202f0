"""Ruled tables on a PDF page: found by PyMuPDF's table finder only inside clusters of drawings that look like a
grid, kept whole as GitHub markdown with the header row first."""

from __future__ import annotations

import re
from typing import Any

from ingest import pdf_page as pg
from ingest.pdf_page import TABLE_MAX_DRAWINGS
from ingest.types import BBox, Block

# A word of three or more letters somewhere in the grid. Plot axes and the labels of a ruled diagram (numbers,
# single letters, symbols) also make grids, while real tables name what they hold: on 45 real PDFs, 14 of the 15
# grids without such a word were axes or diagrams (the 15th, part of a grade table, is letters and points only).
# A rejected grid's text stays on the page as ordinary text.
_WORD = re.compile(r"[^\W\d_]{3,}")
TABLE_MAX_AREA = 4 * 612 * 792  # find_tables is slow on posters and maps: skip pages over 4x Letter


def tables(view: pg.PageView) -> list[Block]:
    page = view.page
    rect = page.rect
    if rect.width * rect.height > TABLE_MAX_AREA or len(view.drawings) > TABLE_MAX_DRAWINGS:
        return []
    # find_tables costs ~0.2-0.7 s on a full page; ruled tables live where drawings cluster, so only those
    # regions are searched (a text-only page costs nothing)
    regions = _ruled_regions(view)
    tables = []
    paths = page.get_drawings() if len(regions) > 1 else None  # extracted once for all regions of the page
    for clip in regions:
        try:  # PyMuPDF >= 2 gates tables with an ONNX layout model at ~1.5 s a page: line-based is enough
            found = page.find_tables(clip=clip, use_layout=False, paths=paths)
        except TypeError:
            found = page.find_tables(clip=clip, paths=paths)
        tables.extend(found.tables)
    return _table_blocks(view, tables)


def _ruled_regions(view: pg.PageView) -> list[Any]:
    """Clusters of drawings that contain at least two horizontal and two vertical rules: table candidates."""
    lines = [r for r in view.drawings if (r.width > 15 and r.height < 3) or (r.height > 8 and r.width < 3)
             or (r.width > 15 and r.height > 8)]
    if len(lines) < 3:
        return []
    regions = []
    for cluster in view.clusters:
        if cluster.width < 40 or cluster.height < 15:
            continue
        inside = [r for r in lines if cluster.contains(r)]
        horizontal = sum(1 for r in inside if r.width >= r.height)
        vertical = sum(1 for r in inside if r.height > r.width or (r.width > 15 and r.height > 8))
        if horizontal >= 2 and vertical >= 2:
            regions.append(cluster + (-2, -2, 2, 2))
    return regions


def _table_blocks(view: pg.PageView, tables: list[Any]) -> list[Block]:
    if not tables:
        return []
    words = view.words
    blocks = []
    for table in tables:
        rows = [r for r in _table_rows(table, words) if any(r)]
        if len(rows) < 2 or max(len(r) for r in rows) < 2 or not any(_WORD.search(c) for r in rows for c in r):
            continue
        blocks.append(Block(text=_markdown(rows), bbox=BBox(*(float(v) for v in table.bbox)), kind="table"))
    return blocks


def _table_rows(table: Any, words: list[tuple[Any, ...]]) -> list[list[str]]:
    """Cell text from the page's words (Table.extract() loses inter-word spaces in some PDFs)."""
    rows = []
    for row in table.rows:
        cells = []
        for cell in row.cells:
            if cell is None:  # the continuation of a merged cell
                cells.append("")
                continue
            box = BBox(*(float(v) for v in cell))
            cells.append(" ".join(str(w[4]) for w in words if pg.center_in(BBox(*w[:4]), box)))
        rows.append(cells)
    return rows


def _markdown(rows: list[list[str]]) -> str:
    """GitHub markdown with the first row as the header (what PDF tables almost always start with)."""
    width = max(len(r) for r in rows)
    norm = [[c.replace("|", "\\|") for c in r] + [""] * (width - len(r)) for r in rows]
    out = ["| " + " | ".join(norm[0]) + " |", "|" + "---|" * width]
    out += ["| " + " | ".join(r) + " |" for r in norm[1:]]
    return "\n".join(out)


def drop_inside(blocks: list[Block], regions: list[BBox]) -> list[Block]:
    """Remove text that a table block already carries (tables are kept whole, once)."""
    if not regions:
        return blocks
    return [b for b in blocks if not any(pg.overlap_ratio(b.bbox, r) > 0.5 for r in regions)]


def merge_tables(blocks: list[Block], tables: list[Block]) -> list[Block]:
    """Insert each table before the first block that starts below it in the same column."""
    out = list(blocks)
    for table in sorted(tables, key=lambda t: t.bbox.y0):
        at = next(
            (
                i
                for i, b in enumerate(out)
                if b.bbox.y0 >= table.bbox.y0 and pg.h_overlap(b.bbox, table.bbox) > 0
            ),
            len(out),
        )
        out.insert(at, table)
    return out
