"""The Vega-Lite spec of a chart, through Altair (imported lazily): x in table order, one colour per series, a
tooltip with each point's citation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistant.charts.types import ChartSeries

WIDTH, HEIGHT = 640, 360  # the whole image, axes and titles included (autosize "fit")


def build_spec(series: tuple[ChartSeries, ...], *, mark: str, title: str, x_title: str, y_title: str,
               caption: str, width: int = WIDTH, height: int = HEIGHT) -> dict[str, Any]:
    """A Vega-Lite spec: x in table order, one colour per series, a tooltip with each point's citation."""
    import altair as alt

    values: list[dict[str, Any]] = [{"x": p.x, "y": p.y, "series": s.name, "raw": p.raw,
                                     "source": f"{p.doc} p.{p.page}",
               "row": p.row, "column": p.column} for s in series for p in s.points]
    order: list[str] = list(dict.fromkeys(str(v["x"]) for v in values))
    subtitle = caption.split(" · ", 1) if len(caption) > 90 else caption  # long captions on two lines
    base = alt.Chart(alt.Data(values=values),
                     title=alt.TitleParams(title, subtitle=subtitle, anchor="start", frame="bounds"))
    chart = base.mark_line(point=True) if mark == "line" else base.mark_bar()
    angle = 0 if max((len(o) for o in order), default=0) <= 8 and len(order) <= 16 else -40
    x = alt.X("x:N", sort=order, title=x_title, axis=alt.Axis(labelLimit=160, labelAngle=angle))
    encodings: dict[str, Any] = {
        "x": x, "y": alt.Y("y:Q", title=y_title),
        "tooltip": [alt.Tooltip("x:N", title=x_title or "x"), alt.Tooltip("y:Q", title=y_title or "y"),
                    alt.Tooltip("series:N"), alt.Tooltip("raw:N", title="cell"), alt.Tooltip("source:N")]}
    if len(series) > 1:
        encodings["color"] = alt.Color("series:N", title=None, sort=[s.name for s in series])
        if mark == "bar":
            encodings["xOffset"] = alt.XOffset("series:N", sort=[s.name for s in series])
    spec: dict[str, Any] = chart.encode(**encodings).properties(width=width, height=height).to_dict()
    spec["autosize"] = {"type": "fit", "contains": "padding"}
    spec["padding"] = {"left": 8, "top": 8, "right": 8, "bottom": 8}  # labels and title stay inside the image
    return spec
