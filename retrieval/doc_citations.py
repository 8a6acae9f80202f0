"""How precisely each Office document is cited, as its parser recorded it (`metadata["citation"]`): a Word file
rendered by LibreOffice at ingest is cited to a page and box; without LibreOffice, to a section and paragraph
only. `citeline status` lists it per document, so a user knows which citations are page-accurate."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrieval.store.protocol import Store

OFFICE_KINDS = ("docx", "pptx", "sheet", "epub")
_LABELS = {
    "page+box": "page + box (rendered by LibreOffice)",
    "section+paragraph": "section + paragraph only (LibreOffice was not installed at ingest: install it and "
                         "re-ingest for page-accurate citations)",
    "slide+box": "slide + shape box",
    "sheet!cells": "sheet + cell range",
    "chapter+paragraph": "chapter + paragraph",
}


@dataclass(frozen=True)
class DocCitation:
    doc: str
    doc_id: str
    kind: str
    citation: str  # page+box | section+paragraph | slide+box | sheet!cells | chapter+paragraph
    page_accurate: bool  # a citation names the page (or slide, or cells) as printed, not only a section
    thumbnails: bool  # page or slide images were rendered (LibreOffice)

    @property
    def label(self) -> str:
        return _LABELS.get(self.citation, self.citation) + (" with thumbnails" if self.kind == "pptx" and
                                                            self.thumbnails else "")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}


def office_citations(store: Store) -> list[DocCitation]:
    """Every Office document's citation precision, by name."""
    metas = sorted((m for m in store.doc_meta().values() if m.kind in OFFICE_KINDS), key=lambda m: (m.name, m.doc_id))
    out = []
    for m in metas:
        cite = m.metadata.get("citation", "")
        thumbs = m.metadata.get("pagination") == "libreoffice" or "thumbnails" in m.metadata
        accurate = cite in ("page+box", "slide+box", "sheet!cells")
        out.append(DocCitation(m.name, m.doc_id, m.kind, cite, accurate, thumbs))
    return out
