"""The chart stage: search tables → read them back → select columns and rows → parse → verify → Vega-Lite.

    chart = ChartMaker(kb, search).chart("Plot the total population by census year")

Numbers come from the cells of tables found in the knowledge base, never from a model; each point cites its
cell and is checked against it (`assistant.charts.verify`); what cannot be plotted is said in `Chart.text`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from assistant.charts import numbers
from assistant.charts.geometry import separate_rows, text_above
from assistant.charts.select import Selection, is_time, select, select_rows
from assistant.charts.spec import HEIGHT, WIDTH, build_spec
from assistant.charts.tables import Table, from_markdown
from assistant.charts.types import Chart, ChartPoint, ChartSeries, TableRef
from assistant.charts.verify import CellChecker
from retrieval.types import Hit, SearchFilters

SearchFn = Callable[..., Sequence[Hit]]


@dataclass(frozen=True)
class ChartSettings:
    top_k: int = 30  # table hits retrieved
    max_tables: int = 12  # candidate tables read back and matched
    closest: int = 3  # tables listed with a refusal
    width: int = WIDTH
    height: int = HEIGHT


class ChartMaker:
    def __init__(self, kb: Any, search: SearchFn, settings: ChartSettings | None = None) -> None:
        self.kb = kb
        self.search = search
        self.settings = settings or ChartSettings()

    def chart(self, question: str, filters: SearchFilters | None = None) -> Chart:
        # stacked rows the text could not separate are separated by the page's layout (while the PDF is there)
        tables = [separate_rows(t) if t.notes else t for t in self.tables(question, filters)]
        selections = [_select(t, question) for t in tables]
        usable = [s for s in selections if s.value_cols]
        if not usable:
            return self._refusal(question, tables, selections)
        best = max(usable, key=lambda s: (s.score, -s.table.search_rank))
        return self._chart(question, best)

    # -- finding tables ---------------------------------------------------------------------------------
    def tables(self, question: str, filters: SearchFilters | None = None) -> list[Table]:
        only_tables = replace(filters or SearchFilters(), modalities=("table",))
        hits = list(self.search(question, top_k=self.settings.top_k, filters=only_tables))
        text_hits = self.search(question, top_k=10, filters=filters)
        hits += [h for h in text_hits if h.kind == "text" and _has_markdown_table(h.text)]
        seen: dict[tuple[Any, ...], Table] = {}
        for rank, hit in enumerate(hits):
            key = (hit.doc_id, hit.page, tuple(hit.bbox.as_list()) if hit.bbox else None, hit.kind == "text" and hit.id)
            if key in seen or len(seen) >= self.settings.max_tables:
                continue
            table = self._read(hit, rank)
            if table is not None:
                seen[key] = table
        return list(seen.values())

    def _read(self, hit: Hit, rank: int) -> Table | None:
        chunks = [(hit.id, hit.text)] if hit.kind == "text" else self._table_chunks(hit)
        page = self.kb.store.page(hit.doc_id, hit.page) or {}
        bbox = tuple(hit.bbox.as_list()) if hit.bbox else None
        table = from_markdown(chunks, doc=hit.doc_name, doc_id=hit.doc_id, page=hit.page, bbox=bbox,  # type: ignore[arg-type]
                              section=hit.section, context=self._page_text(hit.doc_id, hit.page),
                              search_rank=rank, source_path=page.get("path"))
        if table is None:
            return None
        intro = text_above(table.source_path, table.page, table.bbox) or _text_before(table.context, chunks[0][1])
        return replace(table, intro=intro)

    def _table_chunks(self, hit: Hit) -> list[tuple[int, str]]:
        """All the chunks of the hit's table (a long table is stored in several, with the same bbox)."""
        rows = self._tables_on(hit.doc_id, hit.page)
        want = hit.bbox.as_list() if hit.bbox else None
        same = [(i, text) for i, text, box in rows if box == want]
        return same or [(hit.id, hit.text)]

    def _tables_on(self, doc_id: str, page: int) -> list[tuple[int, str, list[float] | None]]:
        """(chunk id, markdown, bbox) of the table chunks on a page, in the order they were stored."""
        ids = self.kb.store.chunk_ids(doc_id, page, "table")
        stored = self.kb.store.get_chunks(ids)
        return [(i, stored[i].chunk.text, stored[i].chunk.bbox.as_list() if stored[i].chunk.bbox else None)
                for i in ids if i in stored]

    def _page_text(self, doc_id: str, page: int) -> str:
        return self.kb.store.page_texts(doc_id, page).get(page, "")

    # -- building ---------------------------------------------------------------------------------------
    def _chart(self, question: str, sel: Selection) -> Chart:
        table = sel.table
        checker = CellChecker(self.kb.store)
        missing: list[str] = []
        more: list[Table] = []
        if sel.transposed:
            series = [self._row_series(table, sel, i, checker, missing) for i in sel.rows]
        else:
            series = [self._series(table, sel, j, checker, missing) for j in sel.value_cols]
            more = self._continuations(table)
            for nxt in more:  # the same table carried on to the next page: its rows continue the series
                cont = replace(sel, table=nxt, rows=select_rows(nxt, sel.x_col, question))
                series = [replace(s, points=s.points + self._series(nxt, cont, j, checker, missing).points)
                          for s, j in zip(series, sel.value_cols, strict=True)]
        series = [s for s in series if s.points]
        series = _named_apart([_distinct(s) for s in _one_unit(series, missing)])
        if not series:
            return self._refusal(question, [table], [replace(sel, value_cols=())],
                                 why="no value of the chosen columns could be read and checked: "
                                 + "; ".join(missing[:5]))
        labels = list(dict.fromkeys(p.x for s in series for p in s.points))
        x_title = ("Year" if all(is_time(x) for x in labels) else "") if sel.transposed else table.columns[sel.x_col]
        mark = "line" if len(labels) >= 3 and all(is_time(x) for x in labels) else "bar"
        asked = re.search(r"\b(bar|column|line)\s+(?:chart|graph|plot)\b", question, re.I)
        if asked:  # the user's own choice of mark wins over the default
            mark = "line" if asked.group(1).lower() == "line" else "bar"
        series = _top(series, question)
        if mark == "line":
            series = [_chronological(s) for s in series]
        unit = numbers.header_unit(table.columns[sel.x_col] if sel.transposed else series[0].name)
        y_title = series[0].name if len(series) == 1 else (unit.describe() or "value")
        bare = [j for j in sel.value_cols if table.columns[j] == y_title]
        if not sel.transposed and y_title.strip("() ") == "%" and bare and bare[0] > 0:  # '| No. of Shares held | % |'
            y_title = f"{table.columns[bare[0] - 1]} (%)"
        if sel.transposed and unit.describe():  # '($ in millions)' heads the label column of such tables
            y_title = f"{y_title} ({unit.describe()})" if len(series) == 1 else unit.describe()
        title = f"{y_title if len(series) == 1 else ', '.join(s.name for s in series)} by {x_title or 'row'}"
        refs = tuple(TableRef(t.doc, t.doc_id, t.page, t.bbox, t.columns, sel.score) for t in [table, *more])
        box = f"table at ({', '.join(f'{v:.0f}' for v in table.bbox)}) · " if table.bbox and not more else ""
        pages = f"page {table.page}" if not more else f"pages {table.page}–{more[-1].page}"
        caption = f"Source: {table.doc}, {pages} · {box}every value checked against its cell"
        spec = build_spec(tuple(series), mark=mark, title=title, x_title=x_title, y_title=y_title,
                          caption=caption, width=self.settings.width, height=self.settings.height)
        n = sum(len(s.points) for s in series)
        text = (f"Plotted {', '.join(s.name for s in series)} by {x_title or 'row'}: {n} values from the table "
                f"on {pages} of {table.doc}, each found again in its cell.")
        if missing:
            text += " Not plotted: " + "; ".join(missing) + "."
        return Chart(question, text, tuple(series), mark, x_title, y_title, title, caption, spec,
                     tuple(missing), False, refs)

    def _series(self, table: Table, sel: Selection, j: int, checker: CellChecker,
                missing: list[str]) -> ChartSeries:
        column = table.columns[j]
        header = numbers.header_unit(column)
        points: list[ChartPoint] = []
        for i in sel.rows:
            row = table.rows[i]
            label, cell = row[sel.x_col].text, row[j]
            if not label or not cell.known:
                missing.append(f"{column} for a row the table stacks with others and that could not be separated")
                continue
            if numbers.is_missing(cell.text):
                missing.append(f"{column} for {label} (the table gives '{cell.text or 'nothing'}')")
                continue
            value = numbers.parse_cell(cell.text, header)
            point = _checked_point(checker, table, cell, value, column, label, label, column, missing)
            if point is not None:
                points.append(point)
        return _unit_kept(column, points, header.unit, "column", missing)

    def _continuations(self, table: Table, most: int = 3) -> list[Table]:
        """The table carried on over the next pages: a table there with the very same header row."""
        out: list[Table] = []
        while table.bbox is not None and len(out) < most:
            page = (out[-1] if out else table).page + 1
            rows = self._tables_on(table.doc_id, page)
            found = None
            for box in dict.fromkeys(tuple(r[2]) for r in rows if r[2]):
                chunks = [(i, text) for i, text, b in rows if b is not None and tuple(b) == box]
                bbox = list(box)
                nxt = from_markdown(chunks, doc=table.doc, doc_id=table.doc_id, page=page,
                                    bbox=(bbox[0], bbox[1], bbox[2], bbox[3]) if bbox else None,
                                    source_path=table.source_path)
                if (nxt is not None and nxt.columns == table.columns
                        and self._carried_on(out[-1] if out else table, nxt)):
                    found = separate_rows(nxt) if nxt.notes else nxt
                    break
            if found is None:
                break
            out.append(found)
        return out

    def _carried_on(self, first: Table, nxt: Table) -> bool:
        """A continuation, not another table with the same header: the first runs to the foot of its page and
        the next starts at the head of its own."""
        if first.bbox is None or nxt.bbox is None:
            return False
        here = self.kb.store.page(first.doc_id, first.page) or {}
        there = self.kb.store.page(nxt.doc_id, nxt.page) or {}
        h1, h2 = float(here.get("height") or 0), float(there.get("height") or 0)
        return bool(h1 and h2 and first.bbox[3] >= 0.7 * h1 and nxt.bbox[1] <= 0.3 * h2)

    def _row_series(self, table: Table, sel: Selection, i: int, checker: CellChecker,
                    missing: list[str]) -> ChartSeries:
        """One row of a year-per-column table as a series (its label the name, the column headers the x axis)."""
        row = table.rows[i]
        name = row[sel.x_col].text
        points: list[ChartPoint] = []
        for j in sel.value_cols:
            column, cell = table.columns[j], row[j]
            header = numbers.header_unit(column)
            value = None if numbers.is_missing(cell.text) or not cell.known else numbers.parse_cell(cell.text, header)
            point = _checked_point(checker, table, cell, value, name, column, name, column, missing)
            if point is not None:
                points.append(point)
        return _unit_kept(name, points, "", "row", missing)

    def _refusal(self, question: str, tables: list[Table], selections: list[Selection], why: str = "") -> Chart:
        ranked = sorted(selections, key=lambda s: (-s.score, s.table.search_rank))[: self.settings.closest]
        closest = tuple(TableRef(s.table.doc, s.table.doc_id, s.table.page, s.table.bbox, s.table.columns, s.score)
                        for s in ranked)
        if not tables:
            text = "No table in your documents holds this data (no table was found for the question)."
        else:
            reasons = why or "; ".join(f"{s.table.doc} p.{s.table.page}: {s.reason}" for s in ranked if s.reason)
            text = "No table in your documents holds this data, so nothing is plotted. Closest tables: " + \
                "; ".join(t.label + " (" + ", ".join(c for c in t.columns if c)[:80] + ")" for t in closest) + \
                (f". Why: {reasons}." if reasons else ".")
        return Chart(question, text, refused=True, closest=closest)


def _select(table: Table, question: str) -> Selection:
    """A table whose cells defeat the reader is one the chart cannot use, not a failed request."""
    try:
        return select(table, question)
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        return Selection(table, -1, (), (), 0.0, f"the table could not be read ({type(exc).__name__})")


def _one_unit(series: list[ChartSeries], missing: list[str]) -> list[ChartSeries]:
    """A chart never mixes units on one axis: the series in the first series' unit are kept, the others named."""
    if not series:
        return series
    unit = series[0].unit
    for s in series[1:]:
        if s.unit != unit:
            missing.append(f"{s.name} (in {s.unit or 'no unit'}; the chart is in {unit or 'no unit'}, "
                           "units are not mixed)")
    return [s for s in series if s.unit == unit]


def _named_apart(series: list[ChartSeries]) -> list[ChartSeries]:
    """Two columns with the same header stay two series in the legend."""
    names = [s.name for s in series]
    out = []
    for k, s in enumerate(series):
        if names.count(s.name) > 1:
            n = names[:k + 1].count(s.name)
            name = f"{s.name} ({n})"
            s = replace(s, name=name, points=tuple(replace(p, series=name) for p in s.points))
        out.append(s)
    return out


def _distinct(series: ChartSeries) -> ChartSeries:
    """Two rows with the same label ('21st July, 2006' twice) stay two bars: the later ones are numbered."""
    seen: dict[str, int] = {}
    points = []
    for p in series.points:
        seen[p.x] = seen.get(p.x, 0) + 1
        points.append(p if seen[p.x] == 1 else replace(p, x=f"{p.x} ({seen[p.x]})"))
    return replace(series, points=tuple(points))


def _top(series: list[ChartSeries], question: str) -> list[ChartSeries]:
    """'top 5', '5 largest': the labels with the largest values of the first series, in table order."""
    m = re.search(r"\b(?:top|largest|biggest|highest)\s+(\d{1,2})\b|\b(\d{1,2})\s+(?:largest|biggest|highest)\b",
                  question, re.I)
    if not m or not series:
        return series
    n = int(m.group(1) or m.group(2))
    ranked = sorted(series[0].points, key=lambda p: -p.y)[:n]
    keep = {p.x for p in ranked}
    return [replace(s, points=tuple(p for p in s.points if p.x in keep)) for s in series]


_MONTH_AT = {m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                         "dec"], start=1)}


def _time_key(label: str) -> tuple[int, int] | None:
    year = re.search(r"(?:1[6-9]|2[01])\d{2}", label)
    month = re.search(r"[A-Za-z]{3}", label)
    if year is None:
        return None
    return int(year.group(0)), _MONTH_AT.get(month.group(0).lower(), 0) if month else 0


def _chronological(series: ChartSeries) -> ChartSeries:
    """A time series reads left to right (annual reports often list the latest year first)."""
    keys = [_time_key(p.x) for p in series.points]
    if any(k is None for k in keys):
        return series
    order = sorted(range(len(keys)), key=lambda i: keys[i] or (0, 0))
    return replace(series, points=tuple(series.points[i] for i in order))


def _text_before(context: str, markdown: str, width: int = 400) -> str:
    """Without the PDF: the page text before the table's first row, as the catalog stores the page."""
    first = markdown.splitlines()[0] if markdown else ""
    at = context.find(first) if first else -1
    return context[max(0, at - width):at] if at > 0 else ""


def _has_markdown_table(text: str) -> bool:
    return sum(1 for line in text.splitlines() if re.match(r"^\s*\|.*\|\s*$", line)) >= 3


def _checked_point(checker: CellChecker, table: Table, cell: Any, value: Any, series: str, x: str, row: str,
                   column: str, missing: list[str]) -> ChartPoint | None:
    """The point of one cell, if it parses as a number and is found again in its cell; else why not, in `missing`."""
    if value is None:
        missing.append(f"{series} for {x} ('{cell.text or 'nothing'}' is not a number)")
        return None
    ok, checked, why = checker.check(table, cell, value)
    if not ok:
        missing.append(f"{series} for {x} ({why})")
        return None
    return ChartPoint(series, x, value.value, value.unit, value.raw, table.doc, table.doc_id, table.page, table.bbox,
                      row, column, True, checked)


def _unit_kept(name: str, points: list[ChartPoint], default: str, along: str, missing: list[str]) -> ChartSeries:
    """A series never mixes units: the most common one stays, the others are named as not plotted."""
    units = [p.unit for p in points]
    unit = max(set(units), key=units.count) if units else default
    for p in points:
        if p.unit != unit:
            missing.append(f"{name} for {p.x} ('{p.raw}' is in {p.unit or 'no unit'}, "
                           f"the {along} in {unit or 'no unit'})")
    return ChartSeries(name, unit, tuple(p for p in points if p.unit == unit))

