"""Slide decks (.pptx, .pptm) with python-pptx: one page per slide, in points (the slide's own size), the
title first, then text frames and tables in reading order (top to bottom, then left to right), pictures
as figures, and the speaker notes last under a heading that marks them as notes.

Each block's bbox is its shape's box on the slide, so a citation carries the slide number and the box.
Speaker notes are not on the slide: their bbox is the slide's bottom edge, a zero-height line.
"""

from __future__ import annotations

import os
from typing import Any

from ingest import office_render as render
from ingest.errors import ResourceLimit
from ingest.formats import SLIDE_SUFFIXES
from ingest.office_common import GuardedParser, macro_warning, markdown_table, open_office_zip, save_figure
from ingest.protocols import ParseOptions
from ingest.types import BBox, Block, Figure, Page, ParsedDocument, doc_id_for

EMU_PER_POINT = 12700
MAX_GROUP_DEPTH = 8
_FILE_NAMES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".emf", ".wmf", ".svg"}


class PptxParser(GuardedParser):
    suffixes: tuple[str, ...] = SLIDE_SUFFIXES
    what = "a slide deck"

    def _parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        import pptx

        with open_office_zip(path, options, "a .pptx") as stream:
            deck = pptx.Presentation(stream)
            if len(deck.slides) > options.max_pages:
                raise ResourceLimit(f"{path}: {len(deck.slides)} slides exceed the limit of {options.max_pages}")
            width = (deck.slide_width or 9144000) / EMU_PER_POINT
            height = (deck.slide_height or 6858000) / EMU_PER_POINT
            doc_id = doc_id_for(sha256)
            pages = [_slide(s, n, width, height, doc_id, options) for n, s in enumerate(deck.slides, 1)]
            hidden = {n for n, s in enumerate(deck.slides, 1) if s._element.get("show") in ("0", "false")}
            pdf = render.render_pdf(stream, ".pptx") if render.wanted(path, options) else None
            if pdf:
                pages = render.slide_thumbnails(pdf, pages, hidden, doc_id, options)
            props = deck.core_properties
        outline = tuple((1, p.section, p.number) for p in pages if p.section)
        title = (props.title or "").strip() or (pages[0].section if pages and pages[0].section else "") \
            or os.path.splitext(os.path.basename(path))[0]
        return ParsedDocument(path=path, sha256=sha256, kind="pptx", pages=tuple(pages), title=title,
                              author=(props.author or "").strip(), outline=outline,
                              metadata={"citation": "slide+box", "slides": str(len(pages)), **macro_warning(path),
                                        **({"hidden_slides": ", ".join(map(str, sorted(hidden)))} if hidden else {}),
                                        **({"thumbnails": "libreoffice"} if pdf else {})})


def _slide(slide: Any, number: int, width: float, height: float, doc_id: str, options: ParseOptions) -> Page:
    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None and title_shape.has_text_frame \
        else ""
    blocks: list[Block] = []
    figures: list[Figure] = []
    shapes = [s for s in _flatten(slide.shapes, 0) if title_shape is None or s.shape_id != title_shape.shape_id]
    if title:
        blocks.append(Block(title, _box(title_shape, width, height), kind="heading"))
    for shape in sorted(shapes, key=lambda s: (_box(s, width, height).y0, _box(s, width, height).x0)):
        box = _box(shape, width, height)
        if getattr(shape, "has_table", False) and shape.has_table:
            rows = [[cell.text.strip() for cell in row.cells] for row in shape.table.rows]
            if any(any(r) for r in rows):
                blocks.append(Block(markdown_table(rows), box, kind="table"))
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            text = "\n".join(" ".join(p.text.split()) for p in shape.text_frame.paragraphs if p.text.strip())
            if text:
                blocks.append(Block(text, box))
        elif hasattr(shape, "image"):
            fig = _picture(shape, box, number, len(figures) + 1, doc_id, options)
            if fig is not None:
                figures.append(fig)
    notes = _notes(slide)
    if notes:
        edge = BBox(0.0, height, width, height)
        blocks.append(Block(f"{title or f'Slide {number}'} (speaker notes)", edge, kind="heading"))
        blocks.append(Block(f"Speaker notes: {notes}", edge))
    return Page(number=number, width=width, height=height, blocks=tuple(blocks), figures=tuple(figures),
                section=title or f"Slide {number}")


def _flatten(shapes: Any, depth: int) -> list[Any]:
    out: list[Any] = []
    for shape in shapes:
        if hasattr(shape, "shapes") and depth < MAX_GROUP_DEPTH:  # a group: its members, in slide coordinates
            out += _flatten(shape.shapes, depth + 1)
        else:
            out.append(shape)
    return out


def _box(shape: Any, width: float, height: float) -> BBox:
    if shape is None or shape.left is None or shape.top is None:
        return BBox(0.0, 0.0, width, height)
    x0, y0 = shape.left / EMU_PER_POINT, shape.top / EMU_PER_POINT
    x1, y1 = x0 + (shape.width or 0) / EMU_PER_POINT, y0 + (shape.height or 0) / EMU_PER_POINT
    return BBox(max(0.0, x0), max(0.0, y0), min(width, x1), min(height, y1))


def _picture(shape: Any, box: BBox, slide: int, index: int, doc_id: str, options: ParseOptions) -> Figure | None:
    try:
        blob = shape.image.blob
    except Exception:  # a linked (external) picture or a placeholder without an image
        return None
    alt = str(getattr(getattr(getattr(shape._element, "_nvXxPr", None), "cNvPr", None), "get", lambda *a: "")(
        "descr", "") or "")
    alt = "" if os.path.splitext(alt.strip())[1].lower() in _FILE_NAMES else alt.strip()  # python-pptx's default
    return save_figure(blob, doc_id, f"p{slide:04d}-fig{index}", box, options, caption=alt)


def _notes(slide: Any) -> str:
    if not slide.has_notes_slide:
        return ""
    frame = slide.notes_slide.notes_text_frame
    return " ".join(frame.text.split()) if frame is not None else ""
