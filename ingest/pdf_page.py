"""What every PDF extraction step shares: a page view that computes the text page, words and vector drawings
once, the document context, bounded rendering, JPEG encoding, and box geometry."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from ingest.errors import CitelineError, is_out_of_memory
from ingest.protocols import ParseOptions
from ingest.types import BBox

TABLE_MAX_DRAWINGS = 3000


@dataclass(frozen=True)
class PageContext:
    """What every page needs to know about its document."""

    options: ParseOptions
    doc_id: str
    body_size: float
    logo_xrefs: frozenset[int]


class PageView:
    """A page and what several extraction steps share: one text page and its words, the vector drawings
    (C-level listing) and their clusters — each computed once, on first use."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self._textpage: Any = None
        self._words: list[tuple[Any, ...]] | None = None
        self._drawings: list[Any] | None = None
        self._clusters: list[Any] | None = None

    @property
    def textpage(self) -> Any:
        if self._textpage is None:
            import pymupdf

            flags = pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP | pymupdf.TEXT_DEHYPHENATE
            self._textpage = self.page.get_textpage(flags=flags)
        return self._textpage

    @property
    def words(self) -> list[tuple[Any, ...]]:
        if self._words is None:
            self._words = self.page.get_text("words", textpage=self.textpage, sort=False)
        return self._words

    @property
    def drawings(self) -> list[Any]:
        """The bounding rectangle of every vector path on the page."""
        if self._drawings is None:
            import pymupdf

            self._drawings = [pymupdf.Rect(d["rect"]) for d in self.page.get_cdrawings()]
        return self._drawings

    @property
    def clusters(self) -> list[Any]:
        """Rectangles around neighbouring drawings (table grids, charts); none on very busy pages."""
        if self._clusters is None:
            rects = self.drawings
            busy = len(rects) > TABLE_MAX_DRAWINGS or not hasattr(self.page, "cluster_drawings")
            self._clusters = [] if busy or not rects else self.page.cluster_drawings(
                drawings=[{"rect": r} for r in rects])
        return self._clusters

    def text_in(self, box: BBox) -> str:
        return " ".join(str(w[4]) for w in self.words if center_in(BBox(*w[:4]), box))


def safe(fn: Any, default: Any) -> Any:
    """Run one optional extraction step; a MuPDF error in it degrades the page instead of failing the file."""
    try:
        return fn()
    except CitelineError:  # our own errors (a missing tesseract, a resource bound) are meant to surface
        raise
    except Exception as exc:
        if is_out_of_memory(exc):  # the worker's memory bound, not a damaged page: fail the file
            raise
        return default


def jpeg(pix: Any, quality: int, sharp: bool = False) -> bytes:
    """Encode with Pillow's libjpeg-turbo (~1 ms for a thumbnail; MuPDF's own encoder takes ~7 ms).

    `sharp` keeps full chroma resolution (4:4:4) so thin coloured chart lines and labels stay crisp."""
    import io

    from PIL import Image

    mode = {1: "L", 3: "RGB"}.get(pix.n)
    if mode is None:  # CMYK or other colour spaces MuPDF renders into: let MuPDF convert
        return bytes(pix.tobytes("jpeg", jpg_quality=quality))
    image = Image.frombuffer(mode, (pix.width, pix.height), pix.samples_mv, "raw", mode, pix.stride, 1)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, subsampling=0 if sharp else 2)
    return out.getvalue()


def bounded_zoom(rect: Any, zoom: float, max_pixels: int) -> float:
    """Shrink `zoom` so the render of `rect` stays within `max_pixels`."""
    area = max(float(rect.width) * float(rect.height), 1.0)
    return max(min(zoom, math.sqrt(max_pixels / area)), 0.001)


def write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def bbox(rect: Any) -> BBox:
    return BBox(float(rect[0]), float(rect[1]), float(rect[2]), float(rect[3]))


def rect_of(box: BBox) -> Any:
    import pymupdf

    return pymupdf.Rect(box.x0, box.y0, box.x1, box.y1)


def area(b: BBox) -> float:
    return max(b.x1 - b.x0, 0.0) * max(b.y1 - b.y0, 0.0)


def clip(b: BBox, page: BBox) -> BBox | None:
    c = BBox(max(b.x0, page.x0), max(b.y0, page.y0), min(b.x1, page.x1), min(b.y1, page.y1))
    return c if c.x1 > c.x0 and c.y1 > c.y0 else None


def too_small(b: BBox, page_area: float, options: ParseOptions) -> bool:
    small_side = min(b.x1 - b.x0, b.y1 - b.y0) < options.min_figure_px
    return small_side or area(b) / page_area < options.min_figure_area_ratio


def intersection(a: BBox, b: BBox) -> float:
    return max(min(a.x1, b.x1) - max(a.x0, b.x0), 0.0) * max(min(a.y1, b.y1) - max(a.y0, b.y0), 0.0)


def overlap_ratio(a: BBox, region: BBox) -> float:
    """The share of `a` that lies inside `region`."""
    return intersection(a, region) / max(area(a), 1e-6)


def center_in(a: BBox, region: BBox) -> bool:
    cx, cy = (a.x0 + a.x1) / 2, (a.y0 + a.y1) / 2
    return region.x0 <= cx <= region.x1 and region.y0 <= cy <= region.y1


def h_overlap(a: BBox, b: BBox) -> float:
    return min(a.x1, b.x1) - max(a.x0, b.x0)


def merge_regions(regions: list[BBox]) -> list[BBox]:
    """Union regions that overlap (an image cut into strips, a chart drawn over its raster background)."""
    merged: list[BBox] = []
    for box in sorted(regions, key=lambda b: (b.y0, b.x0)):
        for i, other in enumerate(merged):
            if intersection(box, other) > 0:
                merged[i] = other.union(box)
                break
        else:
            merged.append(box)
    return merged
