"""LibreOffice as an optional renderer for Word documents and slide decks: `soffice --headless --convert-to
pdf` once per file, in a throwaway profile, under a timeout. The rendered PDF gives each page (or slide) a
thumbnail, and for DOCX it gives the pages themselves: each block is found on the rendered pages, in order,
and takes that page's number and the box of its text in PDF points. A block that cannot be found stays on
the page of the block before it, boxed as the whole page.

Without `soffice` on PATH (Debian: `libreoffice-writer-nogui`, `libreoffice-impress-nogui`), nothing here
runs and documents keep their section + paragraph citations. Macro-enabled files are never rendered, so no
macro can run even under LibreOffice's own macro policy.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import replace
from typing import IO, Any

from ingest.office_common import MACRO_SUFFIXES
from ingest.protocols import ParseOptions
from ingest.types import BBox, Block, Figure, Page

RENDER_TIMEOUT_S = 120.0
_WORDS = re.compile(r"\w+")
_LABEL = re.compile(r"^\[(Footnote|Text box|(First-page |Even-page )?(Header|Footer))\] ")  # not printed: ours


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def wanted(path: str, options: ParseOptions) -> bool:
    return options.render_office and soffice() is not None \
        and os.path.splitext(path)[1].lower() not in MACRO_SUFFIXES


def render_pdf(stream: IO[bytes], suffix: str, timeout: float | None = None) -> bytes | None:
    """The document as PDF bytes, or None when LibreOffice fails or times out (the caller goes on without)."""
    return convert(stream, suffix, "pdf", timeout)


def convert(stream: IO[bytes], suffix: str, target: str, timeout: float | None = None) -> bytes | None:
    """`soffice --convert-to TARGET` in a fresh profile that disables macros; the output's bytes or None."""
    exe = soffice()
    if exe is None:
        return None
    with tempfile.TemporaryDirectory(prefix="citeline-soffice-") as tmp:
        source = os.path.join(tmp, "document" + suffix)
        stream.seek(0)
        with open(source, "wb") as fh:
            shutil.copyfileobj(stream, fh)
        _no_macros_profile(os.path.join(tmp, "profile"))
        cmd = [exe, f"-env:UserInstallation=file://{tmp}/profile", "--headless", "--invisible", "--norestore",
               "--nolockcheck", "--nodefault", "--convert-to", target, "--outdir", os.path.join(tmp, "out"), source]
        if not _run(cmd, timeout or RENDER_TIMEOUT_S, {**os.environ, "HOME": tmp}):
            return None
        out = os.path.join(tmp, "out", "document." + target.split(":")[0])
        if not os.path.isfile(out):
            return None
        with open(out, "rb") as fh:
            return fh.read()


_NO_MACROS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema">
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="MacroSecurityLevel" oor:op="fuse">
<value>3</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Security/Scripting"><prop oor:name="DisableMacrosExecution"
 oor:op="fuse"><value>true</value></prop></item>
</oor:items>
"""


def _no_macros_profile(profile: str) -> None:
    """LibreOffice's user profile with macro execution disabled outright (security level 'very high')."""
    os.makedirs(os.path.join(profile, "user"), exist_ok=True)
    with open(os.path.join(profile, "user", "registrymodifications.xcu"), "w", encoding="utf-8") as fh:
        fh.write(_NO_MACROS)


def _run(cmd: list[str], timeout: float, env: dict[str, str]) -> bool:
    """Run soffice in its own process group, so a timeout kills soffice.bin too, not only the launcher."""
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env, start_new_session=True)
    except OSError:
        return False
    try:
        proc.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return False


def _words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def _thumbnail(page: Any, number: int, doc_id: str, options: ParseOptions) -> str:
    from ingest import pdf_figures
    from ingest import pdf_page as pg

    return pdf_figures.thumbnail(page, number - 1, pg.PageContext(options, doc_id, 10.0, frozenset()))


def paginate(pdf: bytes, pages: list[Page], doc_id: str, options: ParseOptions) -> list[Page] | None:
    """DOCX blocks placed on the rendered pages: numbers, boxes in points, thumbnails. None if unusable."""
    import pymupdf

    doc: Any = pymupdf.open(stream=pdf, filetype="pdf")
    try:
        if doc.page_count == 0 or doc.page_count > options.max_pages:
            return None
        texts = [" ".join(_words(p.get_text("text"))) for p in doc]
        placed: list[list[Block]] = [[] for _ in range(doc.page_count)]
        figures: list[list[Figure]] = [[] for _ in range(doc.page_count)]
        current = 0
        for page in pages:
            for block in page.blocks:
                if block.text.startswith("[Comment") and placed[current]:  # comments are not printed: their
                    placed[current].append(replace(block, bbox=placed[current][-1].bbox))  # paragraph's box
                    continue
                current = _find_page(block, texts, current)
                placed[current].append(replace(block, bbox=_box(doc[current], block)))
            for fig in page.figures:
                figures[current].append(replace(fig, bbox=_image_box(doc[current], len(figures[current]))))
        out: list[Page] = []
        section = pages[0].section if pages else ""
        for i, page in enumerate(doc):
            out.append(Page(number=i + 1, width=float(page.rect.width), height=float(page.rect.height),
                            blocks=tuple(placed[i]), figures=tuple(figures[i]), section=section,
                            thumbnail=_thumbnail(page, i + 1, doc_id, options)))
            section = next((b.text for b in reversed(placed[i]) if b.kind == "heading"), section)
        return out
    finally:
        doc.close()


def _find_page(block: Block, texts: list[str], current: int) -> int:
    """The first page from `current` on whose text the block's opening words appear (blocks never go back)."""
    words = _words(block.text.split("\n", 2)[-1] if block.kind == "table" else _printed(block).split(" › ")[-1])
    probe = " ".join(words[:8])
    if not probe:
        return current
    for i in range(current, len(texts)):
        if probe in texts[i]:
            return i
    return current


def _box(page: Any, block: Block) -> BBox:
    """The MuPDF text blocks holding the block's first and last words (a paragraph, or a table's first and
    last cells), united; the whole page when the words are not found."""
    text = block.text.split(" › ")[-1] if block.kind == "heading" else _printed(block)
    if block.kind == "table":
        cells = [c.strip() for c in text.replace("\n", "|").split("|") if c.strip() and set(c.strip()) != {"-"}]
        probes = [cells[0], cells[-1]] if cells else []
    else:
        words = text.split()
        probes = [" ".join(words[:4]), " ".join(words[-4:])]
    rects = [r for probe in probes if probe for r in page.search_for(probe)[:1]]
    if not rects:
        return BBox(0.0, 0.0, float(page.rect.width), float(page.rect.height))
    boxes = [BBox(r.x0, r.y0, r.x1, r.y1) for r in rects]
    for b in page.get_text("blocks"):
        box = BBox(*(float(v) for v in b[:4]))
        if any(box.x0 <= (r.x0 + r.x1) / 2 <= box.x1 and box.y0 <= (r.y0 + r.y1) / 2 <= box.y1 for r in rects):
            boxes.append(box)
    out = boxes[0]
    for b in boxes[1:]:
        out = out.union(b)
    return BBox(float(out.x0), float(out.y0), float(out.x1), float(out.y1))


def _printed(block: Block) -> str:
    """A block's text as the page prints it: without the label we put on footnotes, text boxes, headers."""
    return _LABEL.sub("", block.text)


def _image_box(page: Any, index: int) -> BBox:
    infos = [i for i in page.get_image_info() if i.get("bbox")]
    if index < len(infos):
        return BBox(*(float(v) for v in infos[index]["bbox"]))
    return BBox(0.0, 0.0, float(page.rect.width), float(page.rect.height))


def slide_thumbnails(pdf: bytes, pages: list[Page], hidden: set[int], doc_id: str,
                     options: ParseOptions) -> list[Page]:
    """Each slide's rendered image as its thumbnail; hidden slides are not exported, so they get none."""
    import pymupdf

    doc: Any = pymupdf.open(stream=pdf, filetype="pdf")
    try:
        shown = [p for p in pages if p.number not in hidden]
        if doc.page_count != len(shown):
            return pages
        thumbs = {p.number: _thumbnail(doc[i], p.number, doc_id, options) for i, p in enumerate(shown)}
    finally:
        doc.close()
    return [replace(p, thumbnail=thumbs.get(p.number)) for p in pages]
