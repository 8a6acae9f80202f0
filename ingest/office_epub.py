"""E-books (.epub) with the zip module and the OPF package document: one page per spine item (chapter), in
spine order, each read as HTML (headings marked, one block per paragraph, positions as in text files),
with the book's images as figures. A chapter's section is its first heading, else its table-of-contents
label. DRM-encrypted chapters (META-INF/encryption.xml naming content documents) are a clear error; font
obfuscation, which the same file also lists, is not DRM and is ignored.
"""

from __future__ import annotations

import os
import posixpath
import re
import zipfile
from typing import Any
from urllib.parse import unquote

from ingest.errors import CorruptFile, FileError, ResourceLimit
from ingest.formats import EPUB_SUFFIXES
from ingest.office_common import GuardedParser, open_office_zip, save_figure
from ingest.protocols import ParseOptions
from ingest.textfiles import html_blocks
from ingest.types import BBox, Figure, Page, ParsedDocument, doc_id_for

MAX_CHAPTER_BYTES = 20_000_000
_OPF = "{http://www.idpf.org/2007/opf}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_IMG = re.compile(r"<(?:img|image)\b[^>]*?\b(?:src|xlink:href)\s*=\s*[\"']([^\"']+)[\"']", re.I)
_HTML_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml"}


class EpubParser(GuardedParser):
    suffixes: tuple[str, ...] = EPUB_SUFFIXES
    what = "an e-book"

    def _parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        with open_office_zip(path, options, "an .epub") as stream, zipfile.ZipFile(stream) as zf:
            opf_path = _rootfile(path, zf)
            opf = _xml(zf.read(opf_path))
            base = posixpath.dirname(opf_path)
            manifest = {i.get("id"): (posixpath.normpath(posixpath.join(base, unquote(i.get("href", "")))),
                                      i.get("media-type", "")) for i in opf.iter(f"{_OPF}item")}
            spine = [manifest[r.get("idref")] for r in opf.iter(f"{_OPF}itemref") if r.get("idref") in manifest]
            _refuse_drm(path, zf, {href for href, _ in spine})
            chapters = [href for href, kind in spine if kind in _HTML_TYPES]
            if len(chapters) > options.max_pages:
                raise ResourceLimit(f"{path}: {len(chapters)} chapters exceed the limit of {options.max_pages}")
            doc_id = doc_id_for(sha256)
            pages = [p for n, href in enumerate(chapters, 1) if (p := _chapter(zf, href, n, doc_id, options))]
        pages = [Page(number=i, width=p.width, height=p.height, blocks=p.blocks, figures=p.figures,
                      section=p.section) for i, p in enumerate(pages, 1)]
        title = _meta(opf, "title") or os.path.splitext(os.path.basename(path))[0]
        outline = tuple((1, p.section, p.number) for p in pages if p.section)
        return ParsedDocument(path=path, sha256=sha256, kind="epub", pages=tuple(pages), title=title,
                              author=_meta(opf, "creator"), outline=outline,
                              metadata={"language": _meta(opf, "language"), "chapters": str(len(pages)),
                                        "citation": "chapter+paragraph"})


def _xml(data: bytes) -> Any:
    from lxml import etree

    return etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True, recover=True))


def _rootfile(path: str, zf: zipfile.ZipFile) -> str:
    try:
        container = _xml(zf.read("META-INF/container.xml"))
    except KeyError as exc:
        raise CorruptFile(f"{path}: not an EPUB (no META-INF/container.xml)") from exc
    root = next((r.get("full-path") for r in container.iter(f"{_CONTAINER}rootfile") if r.get("full-path")), None)
    if not root or root not in zf.namelist():
        raise CorruptFile(f"{path}: the EPUB names no readable package document (OPF)")
    return str(root)


def _refuse_drm(path: str, zf: zipfile.ZipFile, content: set[str]) -> None:
    if "META-INF/encryption.xml" not in zf.namelist():
        return
    enc = _xml(zf.read("META-INF/encryption.xml"))
    refs = {unquote(r.get("URI", "")) for r in enc.iter()
            if isinstance(r.tag, str) and r.tag.endswith("CipherReference")}
    if refs & content:
        raise FileError(f"{path}: a DRM-protected e-book (its chapters are encrypted); export a DRM-free copy")


def _chapter(zf: zipfile.ZipFile, href: str, number: int, doc_id: str, options: ParseOptions) -> Page | None:
    try:
        info = zf.getinfo(href)
    except KeyError:
        return None  # a spine entry the archive lacks: skip it, read the rest
    if info.file_size > MAX_CHAPTER_BYTES:
        raise ResourceLimit(f"{href}: a {info.file_size / 1e6:.0f} MB chapter; over the per-chapter limit")
    html = zf.read(href).decode("utf-8", errors="replace")
    title, blocks = html_blocks(html)
    figures = _images(zf, href, html, number, doc_id, options, len(blocks))
    if not blocks and not figures:
        return None
    heading = next((b.text for b in blocks if b.kind == "heading"), "") or title
    return Page(number=number, width=0.0, height=float(len(blocks)), blocks=tuple(blocks), figures=tuple(figures),
                section=heading[:200])


def _images(zf: zipfile.ZipFile, href: str, html: str, number: int, doc_id: str, options: ParseOptions,
            end: int) -> list[Figure]:
    figures: list[Figure] = []
    for src in dict.fromkeys(_IMG.findall(html)):
        target = posixpath.normpath(posixpath.join(posixpath.dirname(href), unquote(src.split("#")[0])))
        if target not in zf.namelist():
            continue
        fig = save_figure(zf.read(target), doc_id, f"p{number:04d}-fig{len(figures) + 1}", BBox(0, end, 0, end),
                          options)
        if fig is not None:
            figures.append(fig)
    return figures


def _meta(opf: Any, name: str) -> str:
    el = next(iter(opf.iter(f"{_DC}{name}")), None)
    return " ".join((el.text or "").split()) if el is not None else ""
