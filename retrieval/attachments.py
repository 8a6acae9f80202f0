"""Attachment documents: a mail attachment is a document of its own, held by no file but by its parent
document, linked through the `parent` key of its metadata (`ingest.attachments` sets it). Nothing here changes a
schema or runs SQL: the links are read through the store (`Store.doc_meta`); each backend drops a document's
attachments with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from ingest.types import ParsedDocument
from retrieval.types import Hit, ParentLink

if TYPE_CHECKING:
    from retrieval.store.protocol import Store


def attachment_name(file_name: str, doc: ParsedDocument) -> str:
    """How an attachment is named where it is cited: `message.eml › report.docx` (`› fwd.eml ›` when nested)."""
    below = doc.metadata.get("attachment_path")
    return f"{file_name} › {below}" if below else file_name


def parents(store: Store, doc_ids: Sequence[str]) -> dict[str, ParentLink]:
    """For each of `doc_ids` that is an attachment: its parent document."""
    wanted = sorted(set(doc_ids))
    if not wanted:
        return {}
    linked = {d: m.metadata for d, m in store.doc_meta(wanted).items() if m.metadata.get("parent")}
    found = store.doc_meta(sorted({meta["parent"] for meta in linked.values()})) if linked else {}
    return {child: ParentLink(meta["parent"], found[meta["parent"]].name, int(meta.get("parent_page") or 1))
            for child, meta in linked.items() if meta["parent"] in found}


def with_parents(store: Store, hits: list[Hit]) -> list[Hit]:
    """Hits on an attachment, carrying the message it is attached to."""
    found = parents(store, [h.doc_id for h in hits])
    return [replace(h, attached_to=found[h.doc_id]) if h.doc_id in found else h for h in hits]


def parent_of(store: Store, doc_id: str) -> ParentLink | None:
    return parents(store, [doc_id]).get(doc_id)


def attachment_errors(doc: ParsedDocument) -> tuple[str, ...]:
    """Each attachment of `doc` that could not be read, as `name: why` (one a line in its metadata)."""
    return tuple(e for e in doc.metadata.get("attachment_errors", "").split("\n") if e)
