"""What the chart stage hands back: a chart whose every point cites the table cell it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.types import BoxTuple


@dataclass(frozen=True)
class ChartPoint:
    """One plotted value and its citation: document, page, the table's bbox, the row and column labels, the
    cell text it was read from, and whether it was found again in that cell."""

    series: str
    x: str
    y: float
    unit: str
    raw: str
    doc: str
    doc_id: str
    page: int
    bbox: BoxTuple | None
    row: str
    column: str
    verified: bool = False
    checked: str = ""  # what it was checked against: "catalog" (the stored table) and/or "pdf" (the page's words)

    def to_json(self) -> dict[str, Any]:
        return {"series": self.series, "x": self.x, "y": self.y, "unit": self.unit, "raw": self.raw,
                "doc": self.doc, "doc_id": self.doc_id, "page": self.page,
                "bbox": list(self.bbox) if self.bbox else None, "row": self.row, "column": self.column,
                "verified": self.verified, "checked": self.checked}


@dataclass(frozen=True)
class ChartSeries:
    name: str
    unit: str
    points: tuple[ChartPoint, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "points": [p.to_json() for p in self.points]}


@dataclass(frozen=True)
class TableRef:
    """A table the chart used, or one of the closest tables shown with a refusal."""

    doc: str
    doc_id: str
    page: int
    bbox: BoxTuple | None
    columns: tuple[str, ...]
    score: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.doc} p.{self.page}"

    def to_json(self) -> dict[str, Any]:
        return {"doc": self.doc, "doc_id": self.doc_id, "page": self.page,
                "bbox": list(self.bbox) if self.bbox else None, "columns": list(self.columns),
                "score": round(float(self.score), 4)}


@dataclass(frozen=True)
class Chart:
    """A cited chart (`refused` False) or an honest refusal listing the closest tables (`closest`).

    `text` is the answer to show with it: what is plotted, from where, and what is missing and why."""

    question: str
    text: str
    series: tuple[ChartSeries, ...] = ()
    mark: str = "bar"  # "line" for a time series, "bar" for categories
    x_title: str = ""
    y_title: str = ""
    title: str = ""
    caption: str = ""
    spec: dict[str, Any] = field(default_factory=dict)  # Vega-Lite, built with Altair
    missing: tuple[str, ...] = ()
    refused: bool = False
    sources: tuple[TableRef, ...] = ()
    closest: tuple[TableRef, ...] = ()

    @property
    def points(self) -> tuple[ChartPoint, ...]:
        return tuple(p for s in self.series for p in s.points)

    def to_json(self) -> dict[str, Any]:
        return {"question": self.question, "text": self.text, "refused": self.refused, "mark": self.mark,
                "title": self.title, "x_title": self.x_title, "y_title": self.y_title, "caption": self.caption,
                "series": [s.to_json() for s in self.series], "missing": list(self.missing),
                "sources": [t.to_json() for t in self.sources], "closest": [t.to_json() for t in self.closest],
                "spec": self.spec}

    def save(self, path: str | Path, *, scale: float = 1.0) -> Path:
        """Write the chart as PNG, SVG (rendered by vl-convert, no browser) or JSON, by the file's suffix."""
        from assistant.charts.render import save

        return save(Path(path), None if self.refused else self.spec, self.to_json(), why_empty=self.text,
                    scale=scale)

    def png(self, *, scale: float = 1.0) -> bytes:
        from assistant.charts.render import to_png

        return to_png(self.spec, scale=scale)

    def svg(self) -> str:
        from assistant.charts.render import to_svg

        return to_svg(self.spec)
