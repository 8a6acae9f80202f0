"""Every plotted value is looked up again where it is cited: in the table as the catalog stores it (the chunk,
its markdown row and column, the stacked value's position) and, while the source PDF is on disk, among the
words PyMuPDF reads inside the table's bbox on that page. A value not found there is not plotted."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from assistant.charts import numbers
from assistant.charts.tables import Cell, Table, split_markdown


class CellChecker:
    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog
        self._rows: dict[int, list[list[str]]] = {}
        self._words: dict[tuple[str, int, tuple[float, ...] | None], set[str] | None] = {}

    def check(self, table: Table, cell: Cell, value: numbers.CellValue) -> tuple[bool, str, str]:
        """(verified, what it was checked against, why not)."""
        stored = self._stored_cell(cell)
        if stored is None:
            return False, "", "its table is no longer in the knowledge base"
        if cell.part >= 0:
            parts = numbers.tokens(stored)
            found = parts[cell.part] if cell.part < len(parts) else None
        else:
            found = stored.strip()
        if found is None or found != value.raw.strip():
            return False, "catalog", f"'{value.raw}' is not in the cited cell"
        again = numbers.parse_cell(found)
        if again is None or not math.isclose(again.value, value.value, rel_tol=0, abs_tol=1e-9):
            return False, "catalog", f"the cited cell '{found}' does not read as {value.value:g}"
        words = self._page_words(table)
        if words is None:
            return True, "catalog", ""
        printed = words | {w.strip("()") for w in words}
        pieces = [p.strip("()") for p in value.raw.split()]
        if not all(p in printed for p in pieces if p):
            return False, "catalog+pdf", f"'{value.raw}' is not printed inside the table on page {table.page}"
        return True, "catalog+pdf", ""

    def _stored_cell(self, cell: Cell) -> str | None:
        if cell.chunk not in self._rows:
            got = self.catalog.get_chunks([cell.chunk]).get(cell.chunk)
            self._rows[cell.chunk] = split_markdown(got.chunk.text) if got else []
        rows = self._rows[cell.chunk]
        if cell.row >= len(rows):
            return None
        row = rows[cell.row]
        return row[cell.col] if cell.col < len(row) else ""

    def _page_words(self, table: Table) -> set[str] | None:
        key = table.key
        if key not in self._words:
            self._words[key] = _pdf_words(table)
        return self._words[key]


def _pdf_words(table: Table) -> set[str] | None:
    path = table.source_path
    if not path or not table.bbox or Path(path).suffix.lower() != ".pdf" or not Path(path).is_file():
        return None
    import pymupdf

    try:
        with pymupdf.open(path) as doc:
            if doc.needs_pass or table.page > doc.page_count:
                return None
            page = doc[table.page - 1]
            clip = pymupdf.Rect(*table.bbox) + (-2, -2, 2, 2)
            return {str(w[4]) for w in page.get_text("words", clip=clip)}
    except Exception:  # a file that changed or broke since ingest: the catalog check still stands
        return None
