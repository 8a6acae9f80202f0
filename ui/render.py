"""Pure rendering helpers (no Streamlit): highlighted page images, citation badges, Markdown export.

Bounding boxes are in the page's own coordinates (PDF points, origin top-left; pixels for image documents);
the catalog stores each page's width and height in the same units, so a box scales onto any rendering of
the page by the ratio of pixel size to page size.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageOps

from assistant.types import Answer, Citation, ClaimCheck, PageImage, Source
from ingest.formats import IMAGE_SUFFIXES
from ingest.types import BoxTuple
from retrieval.types import ParentLink

HIGHLIGHT = (255, 176, 0)  # amber: visible on white paper and on most figures
PAGE_EDGE = (170, 170, 170)
MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
FULL_PAGE_ZOOM = 2.0


def scale_bbox(bbox: Sequence[float], page_size: tuple[float, float], image_size: tuple[int, int]) -> BoxTuple:
    """Page coordinates → pixel coordinates of an image of the whole page, clamped to the image."""
    pw, ph = page_size
    iw, ih = image_size
    if pw <= 0 or ph <= 0:
        return (0.0, 0.0, 0.0, 0.0)
    sx, sy = iw / pw, ih / ph
    x0, y0, x1, y1 = (float(v) for v in bbox)
    return (max(0.0, min(x0, x1) * sx), max(0.0, min(y0, y1) * sy),
            min(float(iw), max(x0, x1) * sx), min(float(ih), max(y0, y1) * sy))


def draw_highlight(image: Image.Image, box: BoxTuple, pad: int = 4) -> Image.Image:
    """A copy of `image` with `box` (pixels) outlined and tinted."""
    base = image.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    width = max(2, round(min(base.size) / 200))
    rect = (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad)
    draw.rectangle(rect, fill=(*HIGHLIGHT, 48), outline=(*HIGHLIGHT, 255), width=width)
    return Image.alpha_composite(base, overlay).convert("RGB")


def highlighted_thumbnail(page: PageImage, bbox: Sequence[float] | None) -> Image.Image | None:
    """The page thumbnail with the cited region marked (the thumbnail alone when there is no bbox)."""
    if page.thumbnail is None:
        return None
    with Image.open(page.thumbnail) as image:
        image.load()
        marked = draw_highlight(image, scale_bbox(bbox, (page.width, page.height), image.size)) if bbox \
            else image.convert("RGB")
    return ImageOps.expand(marked, border=max(1, marked.width // 150), fill=PAGE_EDGE)  # white page, white app


def full_page(page: PageImage, bbox: Sequence[float] | None, zoom: float = FULL_PAGE_ZOOM) -> Image.Image | None:
    """The page at full size: rendered from the source PDF (or the source image) while the file exists,
    else the thumbnail; the cited region marked."""
    image = _render_source(page, zoom) if page.source is not None else None
    if image is None:
        return highlighted_thumbnail(page, bbox)
    if not bbox:
        return image
    return draw_highlight(image, scale_bbox(bbox, (page.width, page.height), image.size))


def region_view(page: PageImage, bbox: Sequence[float], zoom: float = FULL_PAGE_ZOOM,
                margin: float = 0.05) -> Image.Image | None:
    """The cited region with a margin of context, highlighted: readable in a narrow panel. Rendered sharp
    from the source PDF while it exists, else cut from the thumbnail. None for a region that is most of the
    page (the thumbnail shows that)."""
    clip = _expand(bbox, page.width, page.height, margin)
    if (clip[3] - clip[1]) > 0.6 * page.height and (clip[2] - clip[0]) > 0.6 * page.width:
        return None
    image = _render_source(page, zoom, clip=clip) if page.source is not None else None
    if image is None:
        image = _thumbnail_clip(page, clip)
    if image is None:
        return None
    shifted = (bbox[0] - clip[0], bbox[1] - clip[1], bbox[2] - clip[0], bbox[3] - clip[1])
    return draw_highlight(image, scale_bbox(shifted, (clip[2] - clip[0], clip[3] - clip[1]), image.size))


def _expand(bbox: Sequence[float], width: float, height: float, margin: float) -> BoxTuple:
    x0, y0, x1, y1 = min(bbox[0], bbox[2]), min(bbox[1], bbox[3]), max(bbox[0], bbox[2]), max(bbox[1], bbox[3])
    mx, my = margin * width, margin * height
    return (max(0.0, x0 - mx), max(0.0, y0 - my), min(width, x1 + mx), min(height, y1 + my))


def _thumbnail_clip(page: PageImage, clip: BoxTuple) -> Image.Image | None:
    if page.thumbnail is None:
        return None
    with Image.open(page.thumbnail) as image:
        box = scale_bbox(clip, (page.width, page.height), image.size)
        return image.convert("RGB").crop(_pixels(box))


def _render_source(page: PageImage, zoom: float, clip: BoxTuple | None = None) -> Image.Image | None:
    assert page.source is not None
    suffix = page.source.suffix.lower()
    try:
        if suffix == ".pdf":
            return _render_pdf_page(page.source, page.page, zoom, clip)
        if suffix in IMAGE_SUFFIXES:
            with Image.open(page.source) as image:
                full = image.convert("RGB")
            if clip is None:
                return full
            return full.crop(_pixels(scale_bbox(clip, (page.width, page.height), full.size)))
    except Exception:  # an encrypted, changed or unreadable source: fall back to the stored thumbnail
        return None
    return None


def _pixels(box: BoxTuple) -> tuple[int, int, int, int]:
    return (round(box[0]), round(box[1]), round(box[2]), round(box[3]))


def _render_pdf_page(path: Path, number: int, zoom: float, clip: BoxTuple | None = None) -> Image.Image:
    import pymupdf

    with pymupdf.open(str(path)) as doc:
        page = doc[number - 1]
        rect = pymupdf.Rect(*clip) + (page.rect.x0, page.rect.y0, page.rect.x0, page.rect.y0) if clip else None
        pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False, clip=rect)
        return Image.frombytes("RGB", (pix.width, pix.height), pix.samples)


# -- text ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceView:
    """One source as the panel shows it: the source, and what the verifier said about citations to it."""

    source: Source
    citations: tuple[Citation, ...] = ()

    @property
    def cited(self) -> bool:
        return bool(self.citations)

    @property
    def verified(self) -> bool:
        return any(c.verified for c in self.citations)

    @property
    def quote(self) -> str:
        quotes = [c.quote for c in self.citations if c.quote]
        return quotes[0] if quotes else self.source.text

    @property
    def bbox(self) -> BoxTuple | None:
        boxes = [c.bbox for c in self.citations if c.bbox]
        return boxes[0] if boxes else self.source.bbox

    @property
    def state(self) -> str:
        if not self.cited:
            return "not cited"
        if self.verified:
            return "verified"
        return "inferred" if all(c.inferred for c in self.citations) else "unverified"


def source_views(answer: Answer) -> list[SourceView]:
    """The answer's sources, cited ones first (in citation order), each with its citations."""
    by_n: dict[int, list[Citation]] = {}
    for c in answer.citations:
        by_n.setdefault(c.n, []).append(c)
    views = [SourceView(s, tuple(by_n.get(s.n, ()))) for s in answer.sources]
    order = {n: i for i, n in enumerate(by_n)}
    return sorted(views, key=lambda v: (not v.cited, order.get(v.source.n, 0), v.source.n))


def with_badges(text: str, verified: dict[int, bool]) -> str:
    """Citation markers `[1]`, `[1, 2]` → Streamlit Markdown badges (blue verified, orange not)."""

    def badge(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.findall(r"\d+", match.group(1))]
        return " ".join(f":{'blue' if verified.get(n, False) else 'orange'}-badge[{n}]" for n in numbers)

    return MARKER.sub(badge, _escape_markdown(text))


def _escape_markdown(text: str) -> str:
    return re.sub(r"([*_`$<>#|~])", r"\\\1", text)


def citation_states(answer: Answer) -> dict[int, bool]:
    states: dict[int, bool] = {}
    for c in answer.citations:
        states[c.n] = states.get(c.n, False) or c.verified
    return states


def answer_markdown(answer: Answer) -> str:
    """An answer with its citations as a standalone Markdown document (the export)."""
    lines = [f"## {answer.question}", "", answer.text, ""]
    if answer.abstained:
        lines += ["_Not found in the documents; the closest sources were:_", ""]
    views = source_views(answer)
    if views:
        lines += ["### Sources", ""]
    for view in views:
        s = view.source
        lines.append(f"{s.n}. **{s.doc}**, page {s.page} ({view.state})")
        lines.append(f"   > {' '.join(view.quote.split())}")
    lines += ["", f"_Model: {answer.model or 'n/a'} · retrieval confidence {answer.confidence:.2f}_", ""]
    return "\n".join(lines)


def table_markdown(text: str) -> str | None:
    """The Markdown pipe table in a table source (a PDF, DOCX or slide table, a sheet's cell range), to show
    as a small table rather than as a one-line quote; None for any other text."""
    rows = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    if len(rows) < 2 or not set(rows[1].replace("|", "")) <= set("-: "):
        return None
    return "\n".join(rows)


def attached_caption(parent: ParentLink) -> str:
    """Where an attachment came from: `attached to message.eml` (and which message of an mbox)."""
    where = f" (message {parent.page})" if parent.page > 1 else ""
    return f":material/attach_file: attached to {parent.name}{where}"


def retrievers_label(retrievers: dict[str, int]) -> str:
    return ", ".join(f"{name} #{rank}" for name, rank in sorted(retrievers.items(), key=lambda kv: kv[1]))


def hit_rows(hits: Sequence[Any], shown_ids: set[int]) -> list[dict[str, Any]]:
    """Search hits as table rows for the retrieval-debug view."""
    return [
        {"rank": i, "document": h.doc_name, "page": h.page, "kind": h.kind, "score": round(float(h.score), 4),
         "retrievers": retrievers_label(h.retrievers), "in prompt": h.id in shown_ids,
         "text": " ".join(h.text.split())[:160]}
        for i, h in enumerate(hits, 1)
    ]


def removed_caption(answer: Answer) -> str:
    """'2 sentences removed by verification (1 contradicted by a source, 1 unsupported).'"""
    verdicts = [c.verdict for c in answer.checks if not c.shown]
    parts = [f"{verdicts.count(v)} {v}" for v in ("contradicted", "unsupported") if verdicts.count(v)]
    detail = f" ({', '.join(parts)})" if parts else ""
    return f"{len(answer.dropped)} sentence(s) removed by verification{detail}."


def check_line(check: ClaimCheck) -> str:
    """One rejected sentence with its verdict and the verifier's reason, as Markdown."""
    colour = "red" if check.verdict == "contradicted" else "orange"
    where = f" against [{check.n}]" if check.n else ""
    return f":{colour}-badge[{check.verdict}]{where} ~~{check.sentence}~~ — {check.reason}"


def chart_rows(chart: Any) -> list[dict[str, Any]]:
    """One row per plotted value of an `assistant.charts.Chart`: what is plotted and the cell it was read from."""
    return [{"series": p.series, "label": p.x, "value": p.y, "cell": p.raw, "source": f"{p.doc} p.{p.page}",
             "row": p.row, "column": p.column, "checked": p.checked if p.verified else "no"} for p in chart.points]
