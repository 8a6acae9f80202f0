"""Word documents (.docx, .docm) with python-docx: paragraphs and tables in body order, headings as the
section path, tables whole with their header row, embedded images as figures, footnotes, comments and text
boxes (`w:txbxContent`) attributed to the paragraph that carries them, and each section's headers and footers
(`[Header] …`, `[First-page footer] …`) attributed to the paragraph that starts the section.

Without a renderer a DOCX has no geometry, so (as for text files) a block's bbox records its position:
BBox(0, i, 0, i) with `i` the 0-based index of the body paragraph or table. Pages follow the page breaks
Word recorded when it last laid the file out (`w:lastRenderedPageBreak`), else the hard page breaks; a file
with neither is one page. The citation is then section + paragraph: `metadata["citation"] = "section+paragraph"`.
"""

from __future__ import annotations

import os
import re
from typing import Any

from ingest import office_render as render
from ingest.errors import ResourceLimit
from ingest.formats import DOCX_SUFFIXES
from ingest.office_common import GuardedParser, macro_warning, markdown_table, open_office_zip, save_figure
from ingest.protocols import ParseOptions
from ingest.types import BBox, Block, Figure, Page, ParsedDocument, doc_id_for

MAX_BLOCKS = 200_000
_HEADING = re.compile(r"^(heading|überschrift|titre|título)\s*(\d)$", re.I)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_R_EMBED = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}embed"
_MARGINS = (("header", "Header"), ("first_page_header", "First-page header"), ("even_page_header", "Even-page header"),
            ("footer", "Footer"), ("first_page_footer", "First-page footer"), ("even_page_footer", "Even-page footer"))


class DocxParser(GuardedParser):
    suffixes: tuple[str, ...] = DOCX_SUFFIXES
    what = "a Word document"

    def _parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        import docx

        with open_office_zip(path, options, "a .docx") as stream:
            document = docx.Document(stream)
            reader = _Reader(document, doc_id_for(sha256), options)
            pages = reader.read(path)
            rendered = _rendered(stream, pages, doc_id_for(sha256), options) if render.wanted(path, options) \
                else None
        props = document.core_properties
        title = (props.title or "").strip() or next((b.text for p in pages for b in p.blocks if b.kind == "heading"),
                                                    "") or os.path.splitext(os.path.basename(path))[0]
        meta = {"citation": "section+paragraph", "pagination": reader.pagination, **macro_warning(path)}
        if rendered is not None:
            pages = rendered
            meta.update(citation="page+box", pagination="libreoffice")
        return ParsedDocument(path=path, sha256=sha256, kind="docx", pages=tuple(pages), title=title.split(" › ")[-1],
                              author=(props.author or "").strip(), outline=tuple(reader.outline), metadata=meta)


class _Reader:
    """Walks the body once, cutting pages at page breaks and keeping the heading path."""

    def __init__(self, document: Any, doc_id: str, options: ParseOptions) -> None:
        self.document, self.doc_id, self.options = document, doc_id, options
        body = document.element.body
        self.rendered = bool(body.findall(f".//{_W}lastRenderedPageBreak"))
        self.pagination = "word-rendered" if self.rendered else "hard-breaks"
        self.footnotes = _footnotes(document)
        self.comments = {str(c.comment_id): (c.author or "", c.text) for c in _comments(document)}
        self.path: list[tuple[int, str]] = []  # (level, heading) in force
        self.outline: list[tuple[int, str, int]] = []
        self.pages: list[Page] = []
        self.blocks: list[Block] = []
        self.figures: list[Figure] = []
        self.page_section = ""
        self.index = 0
        self.sections = list(document.sections)
        self.section_no = 0  # the section the walk is in
        self.section_starts = True  # its headers and footers are read at its first item

    def read(self, path: str) -> list[Page]:
        from docx.table import Table

        for item in self.document.iter_inner_content():
            if len(self.blocks) > MAX_BLOCKS or len(self.pages) > self.options.max_pages:
                raise ResourceLimit(f"{path}: more than {MAX_BLOCKS:,} paragraphs or {self.options.max_pages} "
                                    "pages; split the document")
            self._margins()
            if isinstance(item, Table):
                self._table(item)
            else:
                self._paragraph(item)
            self.index += 1
        self._cut()
        return self.pages or [Page(number=1, width=0.0, height=0.0)]

    def _section(self) -> str:
        return " › ".join(t for _, t in self.path)

    def _paragraph(self, par: Any) -> None:
        text = par.text.strip()
        level = _heading_level(par)
        box = BBox(0, self.index, 0, self.index)
        if text and level:
            self.path = [(lv, t) for lv, t in self.path if lv < level] + [(level, text)]
            self.outline.append((level, text, len(self.pages) + 1))
            self.blocks.append(Block(self._section(), box, kind="heading"))
        elif text:
            self.blocks.append(Block(text, box))
        self._notes(par, box)
        for inner in _text_boxes(par._p):
            self.blocks.append(Block(f"[Text box] {inner}", box))
        self._images(par, box, text)
        if self._breaks(par):
            self._cut()
        if par._p.pPr is not None and par._p.pPr.sectPr is not None:
            self.section_no, self.section_starts = self.section_no + 1, True  # a section ends with this paragraph

    def _margins(self) -> None:
        """At a section's first item: its own headers and footers (not those linked to the previous section)."""
        if not self.section_starts or self.section_no >= len(self.sections):
            return
        self.section_starts = False
        box = BBox(0, self.index, 0, self.index)
        for attr, label in _MARGINS:
            part = getattr(self.sections[self.section_no], attr)
            text = "" if part.is_linked_to_previous else _part_text(part)
            if text:
                self.blocks.append(Block(f"[{label}] {text}", box))

    def _notes(self, par: Any, box: BBox) -> None:
        for ref in par._p.iter(f"{_W}footnoteReference"):
            note = self.footnotes.get(ref.get(f"{_W}id") or "")
            if note:
                self.blocks.append(Block(f"[Footnote] {note}", box))
        for ref in par._p.iter(f"{_W}commentReference"):
            author, note = self.comments.get(ref.get(f"{_W}id") or "", ("", ""))
            if note.strip():
                who = f" by {author}" if author else ""
                self.blocks.append(Block(f"[Comment{who}] {note.strip()}", box))

    def _images(self, par: Any, box: BBox, text: str) -> None:
        for blip in par._p.iter("{http://schemas.openxmlformats.org/drawingml/2006/main}blip"):
            part = par.part.related_parts.get(blip.get(_R_EMBED) or "")
            if part is None:
                continue
            name = f"p{len(self.pages) + 1:04d}-fig{len(self.figures) + 1}"
            fig = save_figure(part.blob, self.doc_id, name, box, self.options, caption=text[:300])
            if fig is not None:
                self.figures.append(fig)

    def _breaks(self, par: Any) -> bool:
        tag = f"{_W}lastRenderedPageBreak" if self.rendered else f"{_W}br"
        return any(self.rendered or el.get(f"{_W}type") == "page" for el in par._p.iter(tag))

    def _table(self, table: Any) -> None:
        rows: list[list[str]] = []
        for row in table.rows:
            cells: list[str] = []
            last: Any = None
            for cell in row.cells:  # a merged cell repeats across the columns it spans: keep it once
                cells.append("" if cell._tc is last else cell.text.strip())
                last = cell._tc
            rows.append(cells)
        rows = [r for r in rows if any(r)]
        if rows:
            text = markdown_table(rows)
            self.blocks.append(Block(text, BBox(0, self.index, 0, self.index), kind="table"))

    def _cut(self) -> None:
        if not self.blocks and not self.figures:
            return
        number = len(self.pages) + 1
        self.pages.append(Page(number=number, width=0.0, height=float(self.index + 1), blocks=tuple(self.blocks),
                               figures=tuple(self.figures), section=self.page_section))
        self.page_section = self._section()
        self.blocks, self.figures = [], []


def _rendered(stream: Any, pages: list[Page], doc_id: str, options: ParseOptions) -> list[Page] | None:
    pdf = render.render_pdf(stream, ".docx")
    return render.paginate(pdf, pages, doc_id, options) if pdf else None


def _text_boxes(p: Any) -> list[str]:
    """The text of each text box anchored in a paragraph, once (Word writes a DrawingML box and its VML
    fallback, both holding the same `w:txbxContent`)."""
    found: list[str] = []
    for content in p.iter(f"{_W}txbxContent"):
        lines = [" ".join("".join(t.text or "" for t in q.iter(f"{_W}t")).split()) for q in content.iter(f"{_W}p")]
        text = "\n".join(line for line in lines if line)
        if text and text not in found:
            found.append(text)
    return found


def _part_text(part: Any) -> str:
    """A header's or footer's text: its paragraphs and table cells, one line each."""
    lines = [" ".join(p.text.split()) for p in part.paragraphs]
    lines += [" ".join(c.text.split()) for t in part.tables for row in t.rows for c in row.cells]
    return " / ".join(dict.fromkeys(line for line in lines if line))


def _heading_level(par: Any) -> int:
    name = (par.style.name if par.style is not None else "") or ""
    if name.lower() == "title":
        return 1
    match = _HEADING.match(name.strip())
    if match:
        return int(match.group(2))
    level = par._p.find(f"{_W}pPr/{_W}outlineLvl")
    return int(level.get(f"{_W}val")) + 1 if level is not None and (level.get(f"{_W}val") or "9") < "9" else 0


def _footnotes(document: Any) -> dict[str, str]:
    """Footnote id → text (python-docx has no API for footnotes; the part is plain WordprocessingML)."""
    from lxml import etree

    for rel in document.part.rels.values():
        if rel.reltype.endswith("/footnotes") and not rel.is_external:
            root = etree.fromstring(rel.target_part.blob, parser=etree.XMLParser(resolve_entities=False))
            return {str(n.get(f"{_W}id")): " ".join("".join(t.text or "" for t in n.iter(f"{_W}t")).split())
                    for n in root.iter(f"{_W}footnote") if int(n.get(f"{_W}id") or 0) > 0}
    return {}


def _comments(document: Any) -> list[Any]:
    try:
        return list(document.comments)
    except Exception:  # no comments part
        return []
