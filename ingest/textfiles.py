"""Plain text, Markdown and HTML: one page holding one block per paragraph, headings marked.

These files have no geometry, so a block's bbox records line positions instead: BBox(0, first, 0, last)
with `first`/`last` the 0-based source line numbers the block spans (for HTML: the order of the block).
Citations can still point at "page 1, lines 12-15". The page is 0 wide and as tall as its block count.
"""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from typing import Any

from ingest.errors import CorruptFile, ResourceLimit
from ingest.formats import TEXT_SUFFIXES
from ingest.protocols import ParseOptions
from ingest.types import BBox, Block, BlockKind, Page, ParsedDocument

MAX_TEXT_BYTES = 50_000_000
_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_BLOCKS = {
    "p",
    "div",
    "li",
    "tr",
    "br",
    "pre",
    "blockquote",
    "section",
    "article",
    "td",
    "th",
    "dd",
    "dt",
}
_HTML_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HTML_SKIP = {"script", "style", "noscript", "template", "svg", "head"}
_HTML_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_HTML_IMPLIED_END = {"p", "li", "dt", "dd", "tr", "td", "th", "option"}  # a sibling start tag closes these


def _hidden(attrs: list[tuple[str, str | None]]) -> bool:
    """An element a reader never sees (`hidden`, `aria-hidden="true"`, `display:none`, `visibility:hidden`):
    not document text, and a favourite hiding place for instructions aimed at an assistant."""
    a = {k.lower(): (v or "").lower() for k, v in attrs}
    style = a.get("style", "").replace(" ", "")
    return "hidden" in a or a.get("aria-hidden") == "true" or "display:none" in style or "visibility:hidden" in style


class TextParser:
    suffixes: tuple[str, ...] = TEXT_SUFFIXES

    def parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        text = read_text(path)
        suffix = os.path.splitext(path)[1].lower()
        if suffix in (".html", ".htm"):
            title, blocks = html_blocks(text)
        else:
            blocks = markdown_blocks(text) if suffix in (".md", ".markdown") else plain_blocks(text)
            title = next((b.text for b in blocks if b.kind == "heading"), "")
        title = title or os.path.splitext(os.path.basename(path))[0]
        page = Page(number=1, width=0.0, height=float(len(blocks)), blocks=tuple(blocks), section=title)
        return ParsedDocument(path=path, sha256=sha256, kind="text", pages=(page,), title=title)


def read_text(path: str) -> str:
    """UTF-8 (with or without BOM), else latin-1, which decodes any byte string."""
    try:
        size = os.path.getsize(path)
        if size > MAX_TEXT_BYTES:
            raise ResourceLimit(f"{path}: {size:,} bytes exceed the text-file limit of {MAX_TEXT_BYTES:,}")
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise CorruptFile(f"{path}: cannot be read ({exc})") from exc
    if b"\x00" in raw[:8192] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CorruptFile(f"{path}: looks binary, not text; check the file extension")
    for encoding in ("utf-8-sig", "utf-16") if raw.startswith((b"\xff\xfe", b"\xfe\xff")) else ("utf-8-sig",):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def plain_blocks(text: str) -> list[Block]:
    return [Block(t, BBox(0, a, 0, b)) for t, a, b in _paragraphs(text.splitlines())]


def markdown_blocks(text: str) -> list[Block]:
    """Paragraphs split on blank lines and on ATX headings; fenced code stays one block."""
    blocks: list[Block] = []
    buf: list[str] = []
    start = 0
    in_fence = False
    for i, line in enumerate(text.splitlines()):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        heading = None if in_fence else _MD_HEADING.match(line)
        if heading or (not in_fence and not line.strip()):
            blocks += _flush(buf, start, i - 1)
            buf, start = [], i + 1
            if heading and heading.group(2):
                blocks.append(Block(heading.group(2), BBox(0, i, 0, i), kind="heading"))
            continue
        buf.append(line)
    return blocks + _flush(buf, start, start + len(buf) - 1)


def _flush(buf: list[str], first: int, last: int) -> list[Block]:
    text = "\n".join(buf).strip()
    return [Block(text, BBox(0, first, 0, last))] if text else []


def _paragraphs(lines: list[str]) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []
    buf: list[str] = []
    start = 0
    for i, line in enumerate([*lines, ""]):
        if line.strip():
            if not buf:
                start = i
            buf.append(line.rstrip())
        elif buf:
            out.append(("\n".join(buf).strip(), start, i - 1))
            buf = []
    return out


def html_blocks(html: str) -> tuple[str, list[Block]]:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    parser.flush()
    blocks = [Block(text, BBox(0, i, 0, i), kind=kind) for i, (kind, text) in enumerate(parser.parts)]
    return " ".join(parser.title.split()), blocks


class _HtmlText(HTMLParser):
    """Collects visible text as (kind, text) paragraphs; script/style/head content is dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[tuple[BlockKind, str]] = []
        self.title = ""
        self._buf: list[str] = []
        self._skip = 0
        self._in_title = False
        self._heading = False
        self._hidden: list[Any] = []  # [tag, depth] of the hidden element being skipped

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._hidden and tag == self._hidden[0]:
            if tag not in _HTML_IMPLIED_END or self._hidden[1] > 1:
                self._hidden[1] += 1
                return
            self._hidden = []  # an unclosed hidden <p> ends at the next <p>
        if self._hidden:
            return
        if tag not in _HTML_VOID and _hidden(attrs):
            self._hidden = [tag, 1]
        elif tag == "title":
            self._in_title = True
        elif tag in _HTML_SKIP:
            self._skip += 1
        elif tag in _HTML_HEADINGS or tag in _HTML_BLOCKS:
            self.flush()
            self._heading = tag in _HTML_HEADINGS

    def handle_endtag(self, tag: str) -> None:
        if self._hidden:
            if tag == self._hidden[0]:
                self._hidden[1] -= 1
                self._hidden = self._hidden if self._hidden[1] else []
            return
        if tag == "title":
            self._in_title = False
        elif tag in _HTML_SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in _HTML_HEADINGS or tag in _HTML_BLOCKS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip and not self._hidden:
            self._buf.append(data)

    def flush(self) -> None:
        text = " ".join("".join(self._buf).split())
        if text:
            self.parts.append(("heading" if self._heading else "text", text))
        self._buf = []
        self._heading = False
