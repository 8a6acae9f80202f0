"""Figures on a PDF page: embedded images (minus logos and full-page backgrounds), vector charts (clusters of
drawing paths), each cropped to a JPEG with its caption and the text inside it; and the page thumbnail."""

from __future__ import annotations

import hashlib
import os
from typing import Any

from ingest import pdf_page as pg
from ingest.types import BBox, Block, Figure

FIGURE_DPI = 110
FIGURE_JPEG_QUALITY = 90
THUMB_MAX_PIXELS = 2_000_000
CHART_MIN_PATHS = 8


def figures(view: pg.PageView, pno: int, blocks: list[Block], ctx: pg.PageContext) -> list[Figure]:
    regions = _image_regions(view.page, ctx) + pg.safe(lambda: _chart_regions(view, blocks, ctx), [])
    regions = pg.merge_regions(regions)
    captions = [b for b in blocks if b.kind == "caption"]
    return [_save_figure(view, pno, k, region, captions, ctx) for k, region in enumerate(regions, start=1)]


def _image_regions(page: Any, ctx: pg.PageContext) -> list[BBox]:
    page_box = pg.bbox(page.rect)
    area = max(pg.area(page_box), 1.0)
    out: list[BBox] = []
    if all(img[0] in ctx.logo_xrefs for img in page.get_images()):
        return out  # no images, or only logos: reading the resources is cheap, get_image_info runs the page
    for info in page.get_image_info(xrefs=True):
        if info.get("xref") in ctx.logo_xrefs:
            continue
        box = pg.clip(BBox(*(float(v) for v in info["bbox"])), page_box)
        if box is None or pg.too_small(box, area, ctx.options) or pg.area(box) / area > 0.85:
            continue  # a full-page image is the page itself (a scan or a slide background): the thumbnail
        out.append(box)
    return out


def _chart_regions(view: pg.PageView, blocks: list[Block], ctx: pg.PageContext) -> list[BBox]:
    """Vector charts: clusters of many drawing paths with no table in them (skipped on very busy pages)."""
    drawings = view.drawings
    if len(drawings) < CHART_MIN_PATHS:
        return []
    page_box = pg.bbox(view.page.rect)
    area = max(pg.area(page_box), 1.0)
    tables = [b.bbox for b in blocks if b.kind == "table"]
    out = []
    centres = [((r.x0 + r.x1) / 2, (r.y0 + r.y1) / 2) for r in drawings]
    for rect in view.clusters:
        box = pg.clip(pg.bbox(rect), page_box)
        if box is None or pg.too_small(box, area, ctx.options) or pg.area(box) / area > 0.85:
            continue
        if any(pg.overlap_ratio(box, t) > 0.3 for t in tables):
            continue
        if sum(1 for x, y in centres if box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1) >= CHART_MIN_PATHS:
            out.append(box)
    return out


def _save_figure(view: pg.PageView, pno: int, k: int, box: BBox, captions: list[Block], ctx: pg.PageContext) -> Figure:
    import pymupdf

    page = view.page
    zoom = pg.bounded_zoom(pg.rect_of(box), FIGURE_DPI / 72, min(ctx.options.max_image_pixels, 8_000_000))
    pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), clip=pymupdf.Rect(*box.as_list()), alpha=False)
    data = pg.jpeg(pix, FIGURE_JPEG_QUALITY, sharp=True)
    rel = f"{ctx.doc_id}/p{pno + 1:04d}-fig{k}.jpg"
    pg.write(os.path.join(ctx.options.assets_dir, rel), data)
    inner = view.text_in(box)
    return Figure(
        bbox=box,
        image_path=rel,
        sha256=hashlib.sha256(data).hexdigest(),
        width=pix.width,
        height=pix.height,
        ocr_text=" ".join(inner.split())[:2000],  # the text layer inside the region (chart labels)
        caption=_nearest_caption(box, captions, float(page.rect.height)),
    )


def _nearest_caption(box: BBox, captions: list[Block], page_height: float) -> str:
    best, best_dist = "", page_height * 0.25
    for cap in captions:
        if pg.h_overlap(cap.bbox, box) <= 0:
            continue
        dist = max(cap.bbox.y0 - box.y1, box.y0 - cap.bbox.y1, 0.0)
        if dist < best_dist:
            best, best_dist = cap.text.replace("\n", " "), dist
    return best


def thumbnail(page: Any, pno: int, ctx: pg.PageContext) -> str:
    import pymupdf

    pixels = min(ctx.options.max_image_pixels, THUMB_MAX_PIXELS)
    zoom = pg.bounded_zoom(page.rect, ctx.options.thumbnail_zoom, pixels)
    pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
    rel = f"{ctx.doc_id}/p{pno + 1:04d}.jpg"
    pg.write(os.path.join(ctx.options.assets_dir, rel), pg.jpeg(pix, 80))
    return rel
