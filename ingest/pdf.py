"""PDF parsing with PyMuPDF: text blocks in reading order, headings, tables, captions, figures, OCR.

Reading order is the content-stream order PyMuPDF reports (it keeps LaTeX and Word two-column layouts
column by column, where a geometric top-to-bottom sort interleaves the columns). Every render is bounded
by `ParseOptions.max_image_pixels`, so a 200-inch page or a gigapixel scan costs a bounded amount.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from ingest.errors import CitelineError, CorruptFile, PasswordRequired, ResourceLimit
from ingest.ocr import ocr_blocks, ocr_image
from ingest.protocols import ParseOptions
from ingest.types import BBox, Block, Figure, Page, ParsedDocument, doc_id_for

_GARBAGE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f\ue000-\uf8ff\ufffd]")
CAPTION_RE = re.compile(r"^\s*(fig(ure|\.)?|table|chart|exhibit|plate)\s*[0-9IVX]+[a-z]?\s*[.:|\-—–]?", re.I)
MIN_TEXT_CHARS = 20  # under this a page "has no text layer" (scans, image-only slides, outlined text)
RUNNING_PAGES = 3  # the same short margin text on this many pages is a running header or footer
MARGIN = 0.1  # top and bottom fraction of the page where running headers and footers live
LOGO_PAGES = 3  # an image drawn on this many pages is a logo or a background, not a figure
FIGURE_DPI = 110
FIGURE_JPEG_QUALITY = 90
OCR_DPI = 300
OCR_MAX_PIXELS = 16_000_000  # tesseract's time grows with pixels; 300 dpi A3 still fits
THUMB_MAX_PIXELS = 2_000_000
TABLE_MAX_AREA = 4 * 612 * 792  # find_tables is slow on posters and maps: skip pages over 4x Letter
TABLE_MAX_DRAWINGS = 3000
CHART_MIN_PATHS = 8
OCR_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class _Ctx:
    """What every page needs to know about its document."""

    options: ParseOptions
    doc_id: str
    body_size: float
    logo_xrefs: frozenset[int]


class PdfParser:
    suffixes: tuple[str, ...] = (".pdf",)

    def parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        doc = open_pdf(path, options.passwords)
        try:
            return _parse_document(doc, path, sha256, options)
        except CitelineError:
            raise
        except MemoryError as exc:
            raise ResourceLimit(
                f"{path}: ran out of memory while parsing; split or simplify the PDF"
            ) from exc
        except Exception as exc:  # MuPDF raises RuntimeError subclasses on damaged structures
            detail = f"{type(exc).__name__}: {exc}"
            raise CorruptFile(f"{path}: cannot be read as a PDF ({detail}); re-save or repair it") from exc
        finally:
            doc.close()


def open_pdf(path: str, passwords: tuple[str, ...] = ()) -> Any:
    """Open and authenticate; raise PasswordRequired or CorruptFile with a message a user can act on."""
    import pymupdf

    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:  # FileDataError, EmptyFileError, RuntimeError: all mean "not a usable PDF"
        raise CorruptFile(f"{path}: not a readable PDF ({exc}); re-save or repair it") from exc
    if doc.needs_pass and not any(doc.authenticate(pw) for pw in passwords):
        doc.close()
        raise PasswordRequired(path, tried=len(passwords))
    if doc.page_count == 0:
        doc.close()
        raise CorruptFile(f"{path}: the PDF has no pages (damaged page tree); re-save or repair it")
    return doc


def _parse_document(doc: Any, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
    if doc.page_count > options.max_pages:
        raise ResourceLimit(
            f"{path}: {doc.page_count} pages exceed the limit of {options.max_pages} (max_pages)"
        )
    ctx = _Ctx(options, doc_id_for(sha256), _body_font_size(doc), _logo_xrefs(doc))
    outline = _outline(doc)
    pages: list[Page] = []
    section = ""
    for pno in range(doc.page_count):
        page = _parse_page(doc, pno, ctx)
        titles = [t for _, t, p in outline if p == pno + 1] if outline else _headings(page)
        pages.append(replace(page, section=section or (titles[0] if titles else "")))
        section = titles[-1] if titles else section
    pages = _drop_running_margins(pages)
    meta = {k: str(v) for k, v in (doc.metadata or {}).items() if v}
    return ParsedDocument(
        path=path,
        sha256=sha256,
        kind="pdf",
        pages=tuple(pages),
        title=meta.get("title", "").strip(),
        author=meta.get("author", "").strip(),
        outline=outline,
        metadata=meta,
    )


def _margin_key(block: Block, page: Page) -> str | None:
    """A normalised key for a short text block in the top or bottom margin (page numbers become #)."""
    if block.kind != "text" or len(block.text) > 160 or block.text.count("\n") > 1 or not page.height:
        return None
    if block.bbox.y1 > page.height * MARGIN and block.bbox.y0 < page.height * (1 - MARGIN):
        return None
    return re.sub(r"\d+", "#", " ".join(block.text.lower().split()))


def _drop_running_margins(pages: list[Page]) -> list[Page]:
    """Remove running headers and footers: the same short margin text on at least RUNNING_PAGES pages. They
    repeat on every page, so they add noise to every chunk's embedding and nothing a reader would cite."""
    if len(pages) < RUNNING_PAGES:
        return pages
    counts: Counter[str] = Counter()
    for page in pages:
        counts.update({k for b in page.blocks if (k := _margin_key(b, page))})
    running = {k for k, n in counts.items() if n >= RUNNING_PAGES}
    if not running:
        return pages
    return [replace(page, blocks=tuple(b for b in page.blocks if _margin_key(b, page) not in running))
            for page in pages]


def _outline(doc: Any) -> tuple[tuple[int, str, int], ...]:
    try:
        toc = doc.get_toc(simple=True)
    except Exception:  # a broken /Outlines tree should not cost us the document
        return ()
    return tuple(
        (int(lvl), str(title).strip(), int(pno)) for lvl, title, pno, *_ in toc if str(title).strip()
    )


def _headings(page: Page) -> list[str]:
    return [" ".join(b.text.split())[:200] for b in page.blocks if b.kind == "heading"]


def _body_font_size(doc: Any, sample_pages: int = 12) -> float:
    """The character-weighted median span size over pages spread through the document: its body text size."""
    sizes: Counter[float] = Counter()
    step = max(1, doc.page_count // sample_pages)
    for pno in range(0, min(doc.page_count, step * sample_pages), step):
        try:
            data = doc.load_page(pno).get_text("dict", flags=0)
        except Exception:
            continue
        for block in data.get("blocks", []):
            for line in block.get("lines", []):
                for span in line.get("spans", []):
                    sizes[round(span["size"], 1)] += len(span["text"].strip())
    if not sizes:
        return 10.0
    expanded = sorted(sizes.elements())
    return float(expanded[len(expanded) // 2]) or 10.0


def _logo_xrefs(doc: Any) -> frozenset[int]:
    counts: Counter[int] = Counter()
    for pno in range(doc.page_count):
        try:
            counts.update({img[0] for img in doc.get_page_images(pno) if img[0]})
        except Exception:
            continue
    return frozenset(x for x, n in counts.items() if n >= LOGO_PAGES)


# --- one page ---------------------------------------------------------------------------------------


class _PageView:
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
        return " ".join(str(w[4]) for w in self.words if _center_in(BBox(*w[:4]), box))


def _parse_page(doc: Any, pno: int, ctx: _Ctx) -> Page:
    try:
        page = doc.load_page(pno)
        rect = page.rect
    except Exception:  # one broken page object: keep its slot so page numbers stay right
        return Page(number=pno + 1, width=0.0, height=0.0)
    view = _PageView(page)
    blocks, garbled = _safe(lambda: _text_blocks(view, ctx), ([], 0))
    tables = _safe(lambda: _tables(view), [])
    blocks = _merge_tables(_drop_inside(blocks, [t.bbox for t in tables]), tables)
    ocr = False
    if ctx.options.ocr and _needs_ocr(view, blocks, garbled):
        ocr_blocks = _safe(lambda: _ocr_page(page, ctx.options), [])
        if ocr_blocks:
            blocks, ocr = ocr_blocks, True
    figures = _safe(lambda: _figures(view, pno, blocks, ctx), [])
    thumb = _safe(lambda: _thumbnail(page, pno, ctx), None)
    return Page(
        number=pno + 1,
        width=float(rect.width),
        height=float(rect.height),
        blocks=tuple(blocks),
        figures=tuple(figures),
        ocr=ocr,
        thumbnail=thumb,
    )


def _safe(fn: Any, default: Any) -> Any:
    """Run one optional extraction step; a MuPDF error in it degrades the page instead of failing the file."""
    try:
        return fn()
    except CitelineError:  # our own errors (a missing tesseract, a resource bound) are meant to surface
        raise
    except Exception:
        return default


def _text_blocks(view: _PageView, ctx: _Ctx) -> tuple[list[Block], int]:
    """Blocks in content-stream order, and how many characters were dropped as unmappable glyphs."""
    blocks: list[Block] = []
    garbled = 0
    for raw in view.page.get_text("dict", textpage=view.textpage).get("blocks", []):
        block, lost = _block_from_dict(raw, ctx.body_size)
        garbled += lost
        if block is not None:
            blocks.append(block)
    return _merge_headings(blocks), garbled


def _merge_headings(blocks: list[Block]) -> list[Block]:
    """Join a heading wrapped over several blocks ("Trace-based ... for Dynamic" + "Languages")."""
    out: list[Block] = []
    for block in blocks:
        prev = out[-1] if out else None
        if prev and prev.kind == block.kind == "heading" and _is_continuation(prev, block):
            out[-1] = Block(f"{prev.text} {block.text}", prev.bbox.union(block.bbox), "heading")
        else:
            out.append(block)
    return out


def _is_continuation(prev: Block, block: Block) -> bool:
    line_height = max(prev.bbox.y1 - prev.bbox.y0, 1.0) / (prev.text.count("\n") + 1)
    gap = block.bbox.y0 - prev.bbox.y1
    return -1.0 <= gap < 0.6 * line_height and _h_overlap(prev.bbox, block.bbox) > 0


def _block_from_dict(raw: dict[str, Any], body_size: float) -> tuple[Block | None, int]:
    lines, sizes, bold_chars, chars = [], Counter[float](), 0, 0
    for line in raw.get("lines", []):
        text = "".join(span["text"] for span in line.get("spans", [])).strip()
        if text:
            lines.append(text)
        for span in line.get("spans", []):
            n = len(span["text"].strip())
            sizes[round(span["size"], 1)] += n
            chars += n
            bold_chars += n if span.get("flags", 0) & 16 or "bold" in span.get("font", "").lower() else 0
    raw_text = "\n".join(lines).strip()
    text = clean_text(raw_text)
    lost = len(raw_text) - len(text)
    if not text or lost > len(text):  # mostly glyph ids: a font without a Unicode map
        return None, len(raw_text)
    bbox = BBox(*(float(v) for v in raw["bbox"]))
    size = sizes.most_common(1)[0][0] if sizes else body_size
    kind = _classify(text, size, bold_chars / max(chars, 1), body_size)
    if kind == "heading":
        text = " ".join(text.split())  # "1." and "Introduction" often come as separate lines
    return Block(text=text, bbox=bbox, kind=kind), lost


def clean_text(text: str) -> str:
    """Drop control characters, private-use glyphs and U+FFFD that unmapped fonts leave in the text layer."""
    return _GARBAGE_RE.sub("", text).strip()


def _classify(text: str, size: float, bold_ratio: float, body_size: float) -> Any:
    if CAPTION_RE.match(text) and len(text) > 6:
        return "caption"
    short = len(text) <= 120 and text.count("\n") <= 2
    has_words = re.search(r"[^\W\d_]{2,}", text) is not None
    if short and has_words and not text.rstrip().endswith((".", ",", ";")):
        if size >= body_size * 1.2:
            return "heading"
        if bold_ratio > 0.8 and size >= body_size * 0.95 and len(text) <= 80:
            return "heading"
    return "text"


# --- tables -----------------------------------------------------------------------------------------


def _tables(view: _PageView) -> list[Block]:
    page = view.page
    rect = page.rect
    if rect.width * rect.height > TABLE_MAX_AREA or len(view.drawings) > TABLE_MAX_DRAWINGS:
        return []
    # find_tables costs ~0.2-0.7 s on a full page; ruled tables live where drawings cluster, so only those
    # regions are searched (a text-only page costs nothing)
    regions = _ruled_regions(view)
    tables = []
    paths = page.get_drawings() if len(regions) > 1 else None  # extracted once for all regions of the page
    for clip in regions:
        try:  # PyMuPDF >= 2 gates tables with an ONNX layout model at ~1.5 s a page: line-based is enough
            found = page.find_tables(clip=clip, use_layout=False, paths=paths)
        except TypeError:
            found = page.find_tables(clip=clip, paths=paths)
        tables.extend(found.tables)
    return _table_blocks(view, tables)


def _ruled_regions(view: _PageView) -> list[Any]:
    """Clusters of drawings that contain at least two horizontal and two vertical rules: table candidates."""
    lines = [r for r in view.drawings if (r.width > 15 and r.height < 3) or (r.height > 8 and r.width < 3)
             or (r.width > 15 and r.height > 8)]
    if len(lines) < 3:
        return []
    regions = []
    for cluster in view.clusters:
        if cluster.width < 40 or cluster.height < 15:
            continue
        inside = [r for r in lines if cluster.contains(r)]
        horizontal = sum(1 for r in inside if r.width >= r.height)
        vertical = sum(1 for r in inside if r.height > r.width or (r.width > 15 and r.height > 8))
        if horizontal >= 2 and vertical >= 2:
            regions.append(cluster + (-2, -2, 2, 2))
    return regions


def _table_blocks(view: _PageView, tables: list[Any]) -> list[Block]:
    if not tables:
        return []
    words = view.words
    blocks = []
    for table in tables:
        rows = [r for r in _table_rows(table, words) if any(r)]
        if len(rows) < 2 or max(len(r) for r in rows) < 2:
            continue
        blocks.append(Block(text=_markdown(rows), bbox=BBox(*(float(v) for v in table.bbox)), kind="table"))
    return blocks


def _table_rows(table: Any, words: list[tuple[Any, ...]]) -> list[list[str]]:
    """Cell text from the page's words (Table.extract() loses inter-word spaces in some PDFs)."""
    rows = []
    for row in table.rows:
        cells = []
        for cell in row.cells:
            if cell is None:  # the continuation of a merged cell
                cells.append("")
                continue
            box = BBox(*(float(v) for v in cell))
            cells.append(" ".join(str(w[4]) for w in words if _center_in(BBox(*w[:4]), box)))
        rows.append(cells)
    return rows


def _markdown(rows: list[list[str]]) -> str:
    """GitHub markdown with the first row as the header (what PDF tables almost always start with)."""
    width = max(len(r) for r in rows)
    norm = [[c.replace("|", "\\|") for c in r] + [""] * (width - len(r)) for r in rows]
    out = ["| " + " | ".join(norm[0]) + " |", "|" + "---|" * width]
    out += ["| " + " | ".join(r) + " |" for r in norm[1:]]
    return "\n".join(out)


def _drop_inside(blocks: list[Block], regions: list[BBox]) -> list[Block]:
    """Remove text that a table block already carries (tables are kept whole, once)."""
    if not regions:
        return blocks
    return [b for b in blocks if not any(_overlap_ratio(b.bbox, r) > 0.5 for r in regions)]


def _merge_tables(blocks: list[Block], tables: list[Block]) -> list[Block]:
    """Insert each table before the first block that starts below it in the same column."""
    out = list(blocks)
    for table in sorted(tables, key=lambda t: t.bbox.y0):
        at = next(
            (
                i
                for i, b in enumerate(out)
                if b.bbox.y0 >= table.bbox.y0 and _h_overlap(b.bbox, table.bbox) > 0
            ),
            len(out),
        )
        out.insert(at, table)
    return out


# --- OCR ----------------------------------------------------------------------------------------------


def _needs_ocr(view: _PageView, blocks: list[Block], garbled: int) -> bool:
    """No usable text layer: (almost) no text while something is drawn, or mostly unmappable glyphs."""
    chars = sum(len(b.text.strip()) for b in blocks)
    if garbled > chars:
        return True
    if chars >= MIN_TEXT_CHARS:
        return False
    try:
        page = view.page
        return bool(page.get_images()) or bool(page.get_image_info()) or len(view.drawings) > 0
    except Exception:
        return False


def _ocr_page(page: Any, options: ParseOptions) -> list[Block]:
    pixels = min(OCR_MAX_PIXELS, options.max_image_pixels)
    zoom = _bounded_zoom(page.rect, OCR_DPI / 72, pixels)
    import pymupdf

    pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csGRAY, alpha=False)
    try:
        lines = ocr_image(pix.tobytes("png"), lang=options.ocr_language, timeout=OCR_TIMEOUT_S)
    except ResourceLimit:
        return []
    blocks = ocr_blocks(lines, scale=1 / zoom, origin=(page.rect.x0, page.rect.y0))
    return [replace(b, kind="caption") if CAPTION_RE.match(b.text) else b for b in blocks]


# --- figures --------------------------------------------------------------------------------------------


def _figures(view: _PageView, pno: int, blocks: list[Block], ctx: _Ctx) -> list[Figure]:
    regions = _image_regions(view.page, ctx) + _safe(lambda: _chart_regions(view, blocks, ctx), [])
    regions = _merge_regions(regions)
    captions = [b for b in blocks if b.kind == "caption"]
    figures = []
    for k, region in enumerate(regions, start=1):
        figures.append(_save_figure(view, pno, k, region, captions, ctx))
    return figures


def _image_regions(page: Any, ctx: _Ctx) -> list[BBox]:
    page_box = _bbox(page.rect)
    area = max(_area(page_box), 1.0)
    out: list[BBox] = []
    if all(img[0] in ctx.logo_xrefs for img in page.get_images()):
        return out  # no images, or only logos: reading the resources is cheap, get_image_info runs the page
    for info in page.get_image_info(xrefs=True):
        if info.get("xref") in ctx.logo_xrefs:
            continue
        box = _clip(BBox(*(float(v) for v in info["bbox"])), page_box)
        if box is None or _too_small(box, area, ctx.options) or _area(box) / area > 0.85:
            continue  # a full-page image is the page itself (a scan or a slide background): the thumbnail
        out.append(box)
    return out


def _chart_regions(view: _PageView, blocks: list[Block], ctx: _Ctx) -> list[BBox]:
    """Vector charts: clusters of many drawing paths with no table in them (skipped on very busy pages)."""
    drawings = view.drawings
    if len(drawings) < CHART_MIN_PATHS:
        return []
    page_box = _bbox(view.page.rect)
    area = max(_area(page_box), 1.0)
    tables = [b.bbox for b in blocks if b.kind == "table"]
    out = []
    centres = [((r.x0 + r.x1) / 2, (r.y0 + r.y1) / 2) for r in drawings]
    for rect in view.clusters:
        box = _clip(_bbox(rect), page_box)
        if box is None or _too_small(box, area, ctx.options) or _area(box) / area > 0.85:
            continue
        if any(_overlap_ratio(box, t) > 0.3 for t in tables):
            continue
        if sum(1 for x, y in centres if box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1) >= CHART_MIN_PATHS:
            out.append(box)
    return out


def _save_figure(view: _PageView, pno: int, k: int, box: BBox, captions: list[Block], ctx: _Ctx) -> Figure:
    import pymupdf

    page = view.page
    zoom = _bounded_zoom(_rect_of(box), FIGURE_DPI / 72, min(ctx.options.max_image_pixels, 8_000_000))
    pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), clip=pymupdf.Rect(*box.as_list()), alpha=False)
    data = _jpeg(pix, FIGURE_JPEG_QUALITY, sharp=True)
    rel = f"{ctx.doc_id}/p{pno + 1:04d}-fig{k}.jpg"
    _write(os.path.join(ctx.options.assets_dir, rel), data)
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
        if _h_overlap(cap.bbox, box) <= 0:
            continue
        dist = max(cap.bbox.y0 - box.y1, box.y0 - cap.bbox.y1, 0.0)
        if dist < best_dist:
            best, best_dist = cap.text.replace("\n", " "), dist
    return best


def _thumbnail(page: Any, pno: int, ctx: _Ctx) -> str:
    import pymupdf

    pixels = min(ctx.options.max_image_pixels, THUMB_MAX_PIXELS)
    zoom = _bounded_zoom(page.rect, ctx.options.thumbnail_zoom, pixels)
    pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False)
    rel = f"{ctx.doc_id}/p{pno + 1:04d}.jpg"
    _write(os.path.join(ctx.options.assets_dir, rel), _jpeg(pix, 80))
    return rel


def _jpeg(pix: Any, quality: int, sharp: bool = False) -> bytes:
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


# --- geometry and files -------------------------------------------------------------------------------


def _bounded_zoom(rect: Any, zoom: float, max_pixels: int) -> float:
    """Shrink `zoom` so the render of `rect` stays within `max_pixels`."""
    area = max(float(rect.width) * float(rect.height), 1.0)
    return max(min(zoom, math.sqrt(max_pixels / area)), 0.001)


def _write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _bbox(rect: Any) -> BBox:
    return BBox(float(rect[0]), float(rect[1]), float(rect[2]), float(rect[3]))


def _rect_of(box: BBox) -> Any:
    import pymupdf

    return pymupdf.Rect(box.x0, box.y0, box.x1, box.y1)


def _area(b: BBox) -> float:
    return max(b.x1 - b.x0, 0.0) * max(b.y1 - b.y0, 0.0)


def _clip(b: BBox, page: BBox) -> BBox | None:
    c = BBox(max(b.x0, page.x0), max(b.y0, page.y0), min(b.x1, page.x1), min(b.y1, page.y1))
    return c if c.x1 > c.x0 and c.y1 > c.y0 else None


def _too_small(b: BBox, page_area: float, options: ParseOptions) -> bool:
    small_side = min(b.x1 - b.x0, b.y1 - b.y0) < options.min_figure_px
    return small_side or _area(b) / page_area < options.min_figure_area_ratio


def _intersection(a: BBox, b: BBox) -> float:
    return max(min(a.x1, b.x1) - max(a.x0, b.x0), 0.0) * max(min(a.y1, b.y1) - max(a.y0, b.y0), 0.0)


def _overlap_ratio(a: BBox, region: BBox) -> float:
    """The share of `a` that lies inside `region`."""
    return _intersection(a, region) / max(_area(a), 1e-6)


def _center_in(a: BBox, region: BBox) -> bool:
    cx, cy = (a.x0 + a.x1) / 2, (a.y0 + a.y1) / 2
    return region.x0 <= cx <= region.x1 and region.y0 <= cy <= region.y1


def _h_overlap(a: BBox, b: BBox) -> float:
    return min(a.x1, b.x1) - max(a.x0, b.x0)


def _merge_regions(regions: list[BBox]) -> list[BBox]:
    """Union regions that overlap (an image cut into strips, a chart drawn over its raster background)."""
    merged: list[BBox] = []
    for box in sorted(regions, key=lambda b: (b.y0, b.x0)):
        for i, other in enumerate(merged):
            if _intersection(box, other) > 0:
                merged[i] = other.union(box)
                break
        else:
            merged.append(box)
    return merged
