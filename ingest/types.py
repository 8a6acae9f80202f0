"""Small typed records shared by every stage: what a parsed file, a page, a block and a chunk are.

Coordinates are PDF points in the page's own space (origin top-left, as PyMuPDF reports them); for
images they are pixels. Pages are 1-indexed everywhere, as users and citations count them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

BlockKind = Literal["text", "heading", "table", "caption"]
ChunkKind = Literal["text", "table", "figure"]
DocKind = Literal["pdf", "image", "text", "docx", "pptx", "sheet", "mail", "epub"]
FileStatus = Literal["ingested", "unchanged", "failed", "skipped"]


@dataclass(frozen=True)
class BBox:
    x0: float
    y0: float
    x1: float
    y1: float

    def union(self, other: BBox) -> BBox:
        return BBox(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def as_list(self) -> list[float]:
        return [round(self.x0, 2), round(self.y0, 2), round(self.x1, 2), round(self.y1, 2)]

    @classmethod
    def from_list(cls, values: Any) -> BBox | None:
        if not values:
            return None
        x0, y0, x1, y1 = (float(v) for v in values)
        return cls(x0, y0, x1, y1)


BoxTuple = tuple[float, float, float, float]
"""A `BBox` as answers, charts and the UI carry it, as a plain (x0, y0, x1, y1) tuple: one alias, not one per layer."""


@dataclass(frozen=True)
class Block:
    """A run of text on a page in reading order: a paragraph, a heading, a caption or a whole table."""

    text: str
    bbox: BBox
    kind: BlockKind = "text"
    ocr: bool = False


@dataclass(frozen=True)
class Figure:
    """An image region on a page (or a whole image file), saved as a crop under the KB's assets."""

    bbox: BBox
    image_path: str  # relative to the KB assets folder
    sha256: str
    width: int
    height: int
    ocr_text: str = ""
    caption: str = ""


@dataclass(frozen=True)
class Page:
    number: int  # 1-indexed
    width: float
    height: float
    blocks: tuple[Block, ...] = ()
    figures: tuple[Figure, ...] = ()
    ocr: bool = False  # True when the page's text came from OCR
    thumbnail: str | None = None  # relative to the KB assets folder
    section: str = ""  # the heading in force at the top of the page

    @property
    def text(self) -> str:
        return "\n".join(b.text for b in self.blocks)


@dataclass(frozen=True)
class Attachment:
    """A file carried inside another (a mail attachment), saved by the parser to the staging folder so that it
    is parsed as a document of its own, in its own bounded process (`ingest.attachments`)."""

    name: str  # the file name as sent, made safe (no folders, no odd characters)
    path: str  # the staged copy
    sha256: str  # of its bytes
    page: int = 1  # the page of the parent it hangs on (the message's page in an mbox)


@dataclass(frozen=True)
class ParsedDocument:
    path: str
    sha256: str
    kind: DocKind
    pages: tuple[Page, ...]
    title: str = ""
    author: str = ""
    outline: tuple[tuple[int, str, int], ...] = ()  # (level, title, page)
    metadata: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()  # staged, not yet parsed: `ingest.attachments.expand` reads them

    @property
    def doc_id(self) -> str:
        return doc_id_for(self.sha256)


@dataclass(frozen=True)
class Chunk:
    """The unit that is embedded, searched and cited: a passage, a table or a figure on one page."""

    doc_id: str
    page: int
    kind: ChunkKind
    text: str
    bbox: BBox | None = None
    section: str = ""
    ocr: bool = False
    figure_path: str | None = None
    tokens: int = 0

    @property
    def chunk_id(self) -> str:
        key = f"{self.doc_id}|{self.page}|{self.kind}|{self.bbox.as_list() if self.bbox else ''}|{self.text}"
        return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


@dataclass(frozen=True)
class FileResult:
    """What happened to one input file during an ingest (the unit of the CLI's report)."""

    path: str
    status: FileStatus
    pages: int = 0
    chunks: int = 0
    figures: int = 0
    error: str | None = None
    seconds: float = 0.0
    warning: str | None = None  # ingested, but something a user should know (e.g. nothing searchable in it)
    attachments: int = 0  # documents made of its attachments (mail), each linked to it
    attachment_errors: tuple[str, ...] = ()  # "name: why" for each attachment that could not be read

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def doc_id_for(sha256: str) -> str:
    return sha256[:24]


# --- JSON (de)serialisation for crossing the worker-process boundary (no pickle anywhere) -------------


def document_to_json(doc: ParsedDocument) -> dict[str, Any]:
    return asdict(doc)


def document_from_json(data: dict[str, Any]) -> ParsedDocument:
    pages = tuple(_page_from_json(p) for p in data["pages"])
    outline = tuple((int(a), str(b), int(c)) for a, b, c in data.get("outline", ()))
    return ParsedDocument(
        path=data["path"],
        sha256=data["sha256"],
        kind=data["kind"],
        pages=pages,
        title=data.get("title", ""),
        author=data.get("author", ""),
        outline=outline,
        metadata=dict(data.get("metadata", {})),
        attachments=tuple(Attachment(a["name"], a["path"], a["sha256"], int(a.get("page", 1)))
                          for a in data.get("attachments", ())),
    )


def _bbox(d: dict[str, float]) -> BBox:
    return BBox(d["x0"], d["y0"], d["x1"], d["y1"])


def _page_from_json(p: dict[str, Any]) -> Page:
    blocks = tuple(Block(b["text"], _bbox(b["bbox"]), b.get("kind", "text"), b.get("ocr", False)) for b in p["blocks"])
    figures = tuple(
        Figure(
            bbox=_bbox(f["bbox"]),
            image_path=f["image_path"],
            sha256=f["sha256"],
            width=f["width"],
            height=f["height"],
            ocr_text=f.get("ocr_text", ""),
            caption=f.get("caption", ""),
        )
        for f in p["figures"]
    )
    return Page(
        number=p["number"],
        width=p["width"],
        height=p["height"],
        blocks=blocks,
        figures=figures,
        ocr=p.get("ocr", False),
        thumbnail=p.get("thumbnail"),
        section=p.get("section", ""),
    )
