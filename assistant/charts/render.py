"""A Vega-Lite spec drawn as PNG or SVG through vl-convert (no browser, imported lazily), or saved as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assistant.errors import ChartRenderError


def to_png(spec: dict[str, Any], *, scale: float = 1.0) -> bytes:
    import vl_convert

    return bytes(vl_convert.vegalite_to_png(spec, scale=scale))


def to_svg(spec: dict[str, Any]) -> str:
    import vl_convert

    return str(vl_convert.vegalite_to_svg(spec))


def save(path: Path, spec: dict[str, Any] | None, as_json: dict[str, Any], *, why_empty: str,
         scale: float = 1.0) -> Path:
    """`as_json` for .json; `spec` drawn for .png/.svg (None or empty: nothing to draw, because `why_empty`)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        path.write_text(json.dumps(as_json, indent=2), encoding="utf-8")
        return path
    if suffix not in (".png", ".svg"):
        raise ChartRenderError(f"{path}: write a chart as .png, .svg or .json")
    if not spec:
        raise ChartRenderError(f"nothing to draw: {why_empty}")
    if suffix == ".png":
        path.write_bytes(to_png(spec, scale=scale))
    else:
        path.write_text(to_svg(spec), encoding="utf-8")
    return path
