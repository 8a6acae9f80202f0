"""Spreadsheets (.xlsx, .xlsm with openpyxl; .csv/.tsv with the csv module): each sheet is a page, each
used range (rows separated by an empty row) a table with its header row, cut into row blocks that repeat the
header, each block preceded by a heading naming its cell range (`Budget!B4:F9`), which becomes the chunk's
section and so the citation.

Coordinates are cell-grid units: a page is `max column` wide and `max row` tall, and a block's bbox spans
column and row offsets (A1 = BBox(0, 0, 1, 1)); `office_common.cell_range` turns one back into `B4:F9`.
Values are the cached results of formulas (`data_only=True`; a file never recalculated shows none) written as
displayed (number formats: percent, decimals, thousands, dates). The workbook is streamed (`read_only=True`):
declared dimensions are ignored, so a sheet formatted down to row 1,048,576 costs only its real cells, and
more than `max_cells` non-empty cells is a clear error.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import zipfile
from collections.abc import Iterable
from typing import IO, Any

from ingest.errors import CorruptFile, ResourceLimit
from ingest.formats import CSV_SUFFIXES, SHEET_SUFFIXES
from ingest.office_common import GuardedParser, cell_range, macro_warning, markdown_table, open_office_zip
from ingest.protocols import ParseOptions
from ingest.types import BBox, Block, Page, ParsedDocument

MAX_CELLS = 2_000_000
MAX_CSV_BYTES = 200_000_000
BLOCK_CHARS = 360  # a row block (header included) stays under one chunk of the default budget (~2.5 chars a token)
_REF = re.compile(r"^([A-Z]{1,3})(\d+)(?::([A-Z]{1,3})(\d+))?$")
Grid = dict[tuple[int, int], str]  # (row, column), 1-based → displayed text


class XlsxParser(GuardedParser):
    suffixes: tuple[str, ...] = SHEET_SUFFIXES
    what = "a spreadsheet"

    def __init__(self, max_cells: int = MAX_CELLS) -> None:
        self.max_cells = max_cells

    def _parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        import openpyxl

        with open_office_zip(path, options, "an .xlsx") as stream:
            merged = _merged_ranges(stream)
            stream.seek(0)
            wb = openpyxl.load_workbook(stream, read_only=True, data_only=True, keep_links=False)
            try:
                pages, hidden, budget = [], [], self.max_cells
                for number, ws in enumerate(wb.worksheets, 1):
                    grid = _read_sheet(path, ws, budget)
                    budget -= len(grid)
                    _fill_merged(grid, merged.get(ws.title, []))
                    if ws.sheet_state != "visible":
                        hidden.append(ws.title)
                    pages.append(sheet_page(number, ws.title, grid, ws.sheet_state != "visible"))
                title = (wb.properties.title or "").strip() if wb.properties else ""
            finally:
                wb.close()
        meta = {"sheets": ", ".join(ws for ws in wb.sheetnames), "citation": "sheet!cells", **macro_warning(path)}
        if hidden:
            meta["hidden_sheets"] = ", ".join(hidden)
        return ParsedDocument(path=path, sha256=sha256, kind="sheet", pages=tuple(pages),
                              title=title or os.path.splitext(os.path.basename(path))[0], metadata=meta)


class CsvParser:
    suffixes: tuple[str, ...] = CSV_SUFFIXES

    def __init__(self, max_cells: int = MAX_CELLS) -> None:
        self.max_cells = max_cells

    def parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        from ingest.textfiles import read_text

        if os.path.getsize(path) > MAX_CSV_BYTES:
            raise ResourceLimit(f"{path}: over the {MAX_CSV_BYTES / 1e6:.0f} MB CSV limit; split the file")
        text = read_text(path)
        try:
            dialect: Any = csv.Sniffer().sniff(text[:20_000], delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel_tab if path.lower().endswith(".tsv") else csv.excel
        grid: Grid = {}
        try:
            for r, row in enumerate(csv.reader(io.StringIO(text), dialect), 1):
                for c, value in enumerate(row, 1):
                    if value.strip():
                        grid[(r, c)] = value.strip()
                if len(grid) > self.max_cells:
                    raise _too_many(path, self.max_cells)
        except csv.Error as exc:
            raise CorruptFile(f"{path}: not readable as CSV ({exc})") from exc
        name = os.path.splitext(os.path.basename(path))[0]
        page = sheet_page(1, name, grid, hidden=False)
        return ParsedDocument(path=path, sha256=sha256, kind="sheet", pages=(page,), title=name,
                              metadata={"sheets": name, "citation": "sheet!cells"})


def _too_many(path: str, limit: int) -> ResourceLimit:
    return ResourceLimit(f"{path}: more than {limit:,} non-empty cells (max_cells); split the workbook")


def _read_sheet(path: str, ws: Any, budget: int) -> Grid:
    ws.reset_dimensions()  # trust the cells, not the declared used range (often A1:XFD1048576)
    grid: Grid = {}
    for row in ws.iter_rows():
        for cell in row:
            value = getattr(cell, "value", None)
            if value is None or not hasattr(cell, "row"):
                continue
            text = shown(value, getattr(cell, "number_format", "General") or "General")
            if text:
                grid[(cell.row, cell.column)] = text
        if len(grid) > budget:
            raise _too_many(path, MAX_CELLS if budget == MAX_CELLS else budget)
    return grid


def shown(value: Any, fmt: str) -> str:
    """A cell value as a spreadsheet displays it (the common number formats; General otherwise)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="minutes") if ("h" in fmt.lower() or value.time() != dt.time())\
            else value.date().isoformat()
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (int, float)):
        return _number(float(value), fmt)
    return " ".join(str(value).split())


def _number(value: float, fmt: str) -> str:
    core = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.', "", fmt.split(";")[0])
    if fmt == "General" or not re.search(r"[0#?]", core):
        return f"{value:.10g}" if value != int(value) or abs(value) >= 1e15 else str(int(value))
    decimals = len(m.group(1)) if (m := re.search(r"\.([0#?]+)", core)) else 0
    percent = "%" in core
    number = value * 100 if percent else value
    body = f"{number:,.{decimals}f}" if "," in core else f"{number:.{decimals}f}"
    symbol = next((s for s in ("$", "€", "£", "¥") if s in fmt), "")
    return f"{symbol}{body}{'%' if percent else ''}"


def _merged_ranges(stream: IO[bytes]) -> dict[str, list[tuple[int, int, int, int]]]:
    """Sheet name → merged ranges (r0, c0, r1, c1); read from the XML, which openpyxl's streaming mode skips."""
    from lxml import etree

    ns = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    rel_ns = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    out: dict[str, list[tuple[int, int, int, int]]] = {}
    safe = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    with zipfile.ZipFile(stream) as zf:
        names = set(zf.namelist())
        if "xl/workbook.xml" not in names or "xl/_rels/workbook.xml.rels" not in names:
            return out
        rels = {r.get("Id"): r.get("Target", "") for r in
                etree.fromstring(zf.read("xl/_rels/workbook.xml.rels"), safe)}
        for sheet in etree.fromstring(zf.read("xl/workbook.xml"), safe).iter(f"{ns}sheet"):
            target = rels.get(sheet.get(rel_ns), "").lstrip("/")
            member = target if target.startswith("xl/") else f"xl/{target}"
            if member not in names:
                continue
            with zf.open(member) as fh:
                refs = [el.get("ref", "") for _, el in etree.iterparse(fh, tag=f"{ns}mergeCell",
                                                                       resolve_entities=False)]
            out[sheet.get("name", "")] = [r for r in map(_parse_ref, refs) if r]
    return out


def _parse_ref(ref: str) -> tuple[int, int, int, int] | None:
    match = _REF.match(ref.replace("$", ""))
    if not match:
        return None
    c0, r0 = _col_index(match.group(1)), int(match.group(2))
    c1, r1 = (_col_index(match.group(3)), int(match.group(4))) if match.group(3) else (c0, r0)
    return r0, c0, r1, c1


def _col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def _fill_merged(grid: Grid, ranges: Iterable[tuple[int, int, int, int]]) -> None:
    """A merged range shows its top-left value across the range: a header spanning columns names each."""
    for r0, c0, r1, c1 in ranges:
        value = grid.get((r0, c0))
        if value is None or (r1 - r0 + 1) * (c1 - c0 + 1) > 10_000:
            continue
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                grid[(r, c)] = value


def sheet_page(number: int, name: str, grid: Grid, hidden: bool) -> Page:
    blocks: list[Block] = []
    for rows in _regions(grid):
        blocks += _region_blocks(name, grid, rows)
    width = max((c for _, c in grid), default=0)
    height = max((r for r, _ in grid), default=0)
    section = f"{name} (hidden sheet)" if hidden else name
    return Page(number=number, width=float(width), height=float(height), blocks=tuple(blocks), section=section)


def _regions(grid: Grid) -> list[list[int]]:
    """Runs of consecutive non-empty rows: each run is one used range (one table)."""
    runs: list[list[int]] = []
    for r in sorted({r for r, _ in grid}):
        if runs and r == runs[-1][-1] + 1:
            runs[-1].append(r)
        else:
            runs.append([r])
    return runs


def _region_blocks(sheet: str, grid: Grid, rows: list[int]) -> list[Block]:
    cols = sorted({c for (r, c) in grid if rows[0] <= r <= rows[-1]})
    c0, c1 = cols[0], cols[-1]
    table = [[grid.get((r, c), "") for c in range(c0, c1 + 1)] for r in rows]
    if len(rows) == 1 and sum(1 for v in table[0] if v) == 1:  # a lone title or note cell
        box = BBox(c0 - 1, rows[0] - 1, c1, rows[0])
        return [Block(cell_range(sheet, box), box, kind="heading"), Block(" ".join(v for v in table[0] if v), box)]
    header_rows = 1 if _is_header(table) else 0
    header = table[0] if header_rows else [f"Column {chr(64 + i) if i <= 26 else i}" for i in range(1, len(cols) + 1)]
    body = list(zip(rows[header_rows:], table[header_rows:], strict=True))
    blocks: list[Block] = []
    start = 0
    while start < len(body) or not blocks:
        end, size = start, len(" ".join(header))
        while end < len(body) and (end == start or size + len(" | ".join(body[end][1])) <= BLOCK_CHARS):
            size += len(" | ".join(body[end][1])) + 4
            end += 1
        first_row = rows[0] if start == 0 else body[start][0]
        last_row = body[end - 1][0] if end > start else rows[0]
        box = BBox(c0 - 1, first_row - 1, c1, last_row)
        blocks.append(Block(cell_range(sheet, box), box, kind="heading"))
        blocks.append(Block(markdown_table([header] + [v for _, v in body[start:end]]), box, kind="table"))
        start = end
        if start >= len(body):
            break
    return blocks


def _is_header(table: list[list[str]]) -> bool:
    """The first row names the columns: at least two rows, and every filled cell of the first is text."""
    first = [v for v in table[0] if v]
    return len(table) > 1 and len(first) >= max(1, len(table[0]) // 2) and not any(_numeric(v) for v in first)


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[$€£¥]?-?[\d,]+(\.\d+)?%?", text))
