"""What search returns: hits that say what was found, where, how well, and by which retrievers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ingest.types import BBox, Chunk

HitKind = Literal["text", "table", "figure", "page"]


@dataclass(frozen=True)
class SearchFilters:
    docs: tuple[str, ...] = ()  # document names or doc ids
    path_glob: str | None = None  # fnmatch over the source file path
    file_types: tuple[str, ...] = ()  # "pdf", "image", "text"
    pages: tuple[int, int] | None = None  # inclusive 1-indexed range
    modalities: tuple[str, ...] = ()  # subset of "text", "table", "figure"


@dataclass(frozen=True)
class ParentLink:
    """The document another one is attached to (the message a PDF came with), and the page it hangs on."""

    doc_id: str
    name: str
    page: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"doc_id": self.doc_id, "doc": self.name, "page": self.page}


@dataclass(frozen=True)
class Hit:
    id: int  # catalog chunk row id (for a page-level hit: the best chunk on that page)
    doc_id: str
    doc_name: str
    page: int
    kind: HitKind
    text: str
    score: float
    bbox: BBox | None = None
    retrievers: dict[str, int] = field(default_factory=dict)  # retriever name -> 1-based rank
    figure_path: str | None = None  # relative to the KB assets folder
    section: str = ""
    chunk: Chunk | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    attached_to: ParentLink | None = None  # the message this hit's document is attached to

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "doc": self.doc_name,
            "doc_id": self.doc_id,
            "page": self.page,
            "bbox": self.bbox.as_list() if self.bbox else None,
            "kind": self.kind,
            "text": self.text,
            "score": round(float(self.score), 6),
            "retrievers": dict(self.retrievers),
            "figure_path": self.figure_path,
            "section": self.section,
            "attached_to": self.attached_to.to_json() if self.attached_to else None,
        }
