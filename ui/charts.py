"""A chart request in the chat: the chart drawn under the answer (Streamlit's native Vega-Lite), its values and
their cells in an expander, and its table(s) as the answer's sources, so the sources panel shows the page."""

from __future__ import annotations

from typing import Any

import streamlit as st

from assistant.charts import Chart, is_chart_request
from assistant.types import Answer, Citation, Source
from ui import render

__all__ = ["chart_answer", "chart_for", "is_chart_request", "render_chart"]


def chart_for(sdk: Any, question: str, filters: Any = None) -> Chart:
    return sdk.chart(question, filters=filters)  # type: ignore[no-any-return]


def chart_answer(chart: Chart) -> Answer:
    """The chart as an answer: its text, cited to the table(s) it was read from (or the closest tables)."""
    tables = chart.sources or chart.closest
    sources = tuple(Source(n=i, doc=t.doc, doc_id=t.doc_id, page=t.page, kind="table",
                           text="Table with columns: " + ", ".join(c for c in t.columns if c),
                           score=t.score, bbox=t.bbox) for i, t in enumerate(tables, 1))
    if chart.refused:
        return Answer(chart.question, chart.text, sources=sources, abstained=True, model="charts")
    citations = tuple(Citation(n=s.n, doc=s.doc, page=s.page, quote=s.text, verified=True, support=1.0,
                               sentence=chart.text, bbox=s.bbox, doc_id=s.doc_id) for s in sources)
    marks = " ".join(f"[{s.n}]" for s in sources)
    return Answer(chart.question, f"{chart.text} {marks}", citations=citations, sources=sources, model="charts")


def render_chart(chart: Chart | None, key: str) -> None:
    if chart is None or chart.refused or not chart.spec:
        return
    st.vega_lite_chart(chart.spec, width="stretch", key=f"chart-{key}")  # the spec's autosize fits the column
    rows = render.chart_rows(chart)
    with st.expander(f"Plotted values and their cells ({len(rows)})", icon=":material/table_chart:"):
        st.dataframe(rows, hide_index=True, width="stretch")
