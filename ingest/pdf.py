"""PDF parsing with PyMuPDF: text blocks in reading order, headings, tables, captions, figures, OCR.

Reading order is the content-stream order PyMuPDF reports (it keeps LaTeX and Word two-column layouts
column by column, where a geometric top-to-bottom sort interleaves the columns). Every render is bounded
by `ParseOptions.max_image_pixels`, so a 200-inch page or a gigapixel scan costs a bounded amount.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import replace
from typing import Any

from ingest import pdf_figures, pdf_tables
from ingest import pdf_page as pg
from ingest.errors import (
    CitelineError,
    CorruptFile,
    PasswordRequired,
    ResourceLimit,
    is_out_of_memory,
    out_of_memory,
)
from ingest.formats import PDF_SUFFIXES
from ingest.ocr import ocr_blocks, ocr_image
from ingest.passwords import candidates
from ingest.protocols import ParseOptions
from ingest.types import BBox, Block, Page, ParsedDocument, doc_id_for

_GARBAGE_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f\ue000-\uf8ff\ufffd]")
CAPTION_RE = re.compile(r"^\s*(fig(ure|\.)?|table|chart|exhibit|plate)\s*[0-9IVX]+[a-z]?\s*[.:|\-—–]?", re.I)
_OBJECT_RE = re.compile(rb"\d+\s+\d+\s+obj\b")
MIN_TEXT_CHARS = 20  # under this a page "has no text layer" (scans, image-only slides, outlined text)
RUNNING_PAGES = 3  # the same short margin text on this many pages is a running header or footer
MARGIN = 0.1  # top and bottom fraction of the page where running headers and footers live
LOGO_PAGES = 3  # an image drawn on this many pages is a logo or a background, not a figure
OCR_DPI = 300
OCR_MAX_PIXELS = 16_000_000  # tesseract's time grows with pixels; 300 dpi A3 still fits
OCR_TIMEOUT_S = 60.0


class PdfParser:
    suffixes: tuple[str, ...] = PDF_SUFFIXES

    def parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        doc = open_pdf(path, options.passwords)
        try:
            return _parse_document(doc, path, sha256, options)
        except CitelineError:
            raise
        except Exception as exc:  # MuPDF raises RuntimeError subclasses on damaged structures
            if is_out_of_memory(exc):
                raise out_of_memory(path, "the PDF") from exc
            detail = f"{type(exc).__name__}: {exc}"
            raise CorruptFile(f"{path}: cannot be read as a PDF ({detail}); re-save or repair it") from exc
        finally:
            doc.close()


def open_pdf(path: str, passwords: tuple[str, ...] = ()) -> Any:
    """Open and authenticate; raise PasswordRequired or CorruptFile with a message a user can act on."""
    import pymupdf

    if os.path.getsize(path) == 0:
        raise CorruptFile(f"{path}: the file is empty (0 bytes); copy or download it again")
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:  # FileDataError, EmptyFileError, RuntimeError: all mean "not a usable PDF"
        raise CorruptFile(f"{path}: not a readable PDF ({exc}); {_repair_advice(path)}") from exc
    # each password as typed, then its SASLprep form (how AES-256 writers key the file)
    if doc.needs_pass and not any(doc.authenticate(pw) for pw in candidates(passwords)):
        doc.close()
        raise PasswordRequired(path, tried=len(passwords))
    if doc.page_count == 0:
        doc.close()
        raise CorruptFile(f"{path}: the PDF has no pages (damaged page tree); {_repair_advice(path)}")
    return doc


def _repair_advice(path: str) -> str:
    """A PDF ends with %%EOF (incremental updates append after it, each with its own): without one near the end
    the file was most likely cut short by an interrupted download or copy."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
        fh.seek(max(0, os.path.getsize(path) - 1024))
        tail = fh.read()
    if b"%%EOF" in tail or not _OBJECT_RE.search(head):  # no objects at all: garbage after a header, not a cut
        return "re-save or repair it"
    return "the file looks truncated (no %%EOF at its end): copy or download it again"


def _parse_document(doc: Any, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
    if doc.page_count > options.max_pages:
        raise ResourceLimit(
            f"{path}: {doc.page_count} pages exceed the limit of {options.max_pages} (max_pages)"
        )
    ctx = pg.PageContext(options, doc_id_for(sha256), _body_font_size(doc), _logo_xrefs(doc))
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
        except Exception as exc:
            if is_out_of_memory(exc):
                raise
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
        except Exception as exc:
            if is_out_of_memory(exc):
                raise
            continue
    return frozenset(x for x, n in counts.items() if n >= LOGO_PAGES)


# --- one page ---------------------------------------------------------------------------------------


def _parse_page(doc: Any, pno: int, ctx: pg.PageContext) -> Page:
    try:
        page = doc.load_page(pno)
        rect = page.rect
    except Exception as exc:  # one broken page object: keep its slot so page numbers stay right
        if is_out_of_memory(exc):
            raise
        return Page(number=pno + 1, width=0.0, height=0.0)
    view = pg.PageView(page)
    blocks, garbled = pg.safe(lambda: _text_blocks(view, ctx), ([], 0))
    tables = pg.safe(lambda: pdf_tables.tables(view), [])
    blocks = pdf_tables.merge_tables(pdf_tables.drop_inside(blocks, [t.bbox for t in tables]), tables)
    ocr = False
    if ctx.options.ocr and _needs_ocr(view, blocks, garbled):
        ocr_blocks = pg.safe(lambda: _ocr_page(page, ctx.options), [])
        if ocr_blocks:
            blocks, ocr = ocr_blocks, True
    figures = pg.safe(lambda: pdf_figures.figures(view, pno, blocks, ctx), [])
    thumb = pg.safe(lambda: pdf_figures.thumbnail(page, pno, ctx), None)
    return Page(
        number=pno + 1,
        width=float(rect.width),
        height=float(rect.height),
        blocks=tuple(blocks),
        figures=tuple(figures),
        ocr=ocr,
        thumbnail=thumb,
    )


def _text_blocks(view: pg.PageView, ctx: pg.PageContext) -> tuple[list[Block], int]:
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
    return -1.0 <= gap < 0.6 * line_height and pg.h_overlap(prev.bbox, block.bbox) > 0


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


# --- OCR ----------------------------------------------------------------------------------------------


def _needs_ocr(view: pg.PageView, blocks: list[Block], garbled: int) -> bool:
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
    zoom = pg.bounded_zoom(page.rect, OCR_DPI / 72, pixels)
    import pymupdf

    pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csGRAY, alpha=False)
    try:
        lines = ocr_image(pix.tobytes("png"), lang=options.ocr_language, timeout=OCR_TIMEOUT_S)
    except ResourceLimit:
        return []
    blocks = ocr_blocks(lines, scale=1 / zoom, origin=(page.rect.x0, page.rect.y0))
    return [replace(b, kind="caption") if CAPTION_RE.match(b.text) else b for b in blocks]


