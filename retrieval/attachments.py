"""Attachment documents in the catalog: a mail attachment is a document of its own, held by no file but by its
parent document, linked through the `parent` key of its metadata JSON (`ingest.attachments` sets it). Nothing
here changes the schema; the catalog calls `child_ids` when it drops a document, search calls `with_parents`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace

from ingest.types import ParsedDocument
from retrieval.types import Hit, ParentLink

_CHILDREN = "SELECT doc_id FROM documents WHERE json_extract(metadata, '$.parent') = ?"


def child_ids(db: sqlite3.Connection, doc_id: str) -> list[str]:
    """The documents attached to `doc_id` (one level; the caller recurses by dropping each)."""
    return [r[0] for r in db.execute(_CHILDREN, (doc_id,))]


def attachment_name(file_name: str, doc: ParsedDocument) -> str:
    """How an attachment is named where it is cited: `message.eml › report.docx` (`› fwd.eml ›` when nested)."""
    below = doc.metadata.get("attachment_path")
    return f"{file_name} › {below}" if below else file_name


def parents(db: sqlite3.Connection | None, doc_ids: Sequence[str]) -> dict[str, ParentLink]:
    """For each of `doc_ids` that is an attachment: its parent document."""
    wanted = sorted(set(doc_ids))
    if not wanted or db is None:  # a server KB records no attachment links yet
        return {}
    marks = ",".join("?" * len(wanted))
    rows = db.execute(
        "SELECT c.doc_id, p.doc_id, p.name, json_extract(c.metadata, '$.parent_page') FROM documents c"
        f" JOIN documents p ON p.doc_id = json_extract(c.metadata, '$.parent') WHERE c.doc_id IN ({marks})", wanted)
    return {child: ParentLink(pid, name, int(page or 1)) for child, pid, name, page in rows}


def with_parents(db: sqlite3.Connection | None, hits: list[Hit]) -> list[Hit]:
    """Hits on an attachment, carrying the message it is attached to."""
    found = parents(db, [h.doc_id for h in hits])
    return [replace(h, attached_to=found[h.doc_id]) if h.doc_id in found else h for h in hits]


def parent_of(db: sqlite3.Connection | None, doc_id: str) -> ParentLink | None:
    return parents(db, [doc_id]).get(doc_id)


def attachment_errors(doc: ParsedDocument) -> tuple[str, ...]:
    """Each attachment of `doc` that could not be read, as `name: why` (one a line in its metadata)."""
    return tuple(e for e in doc.metadata.get("attachment_errors", "").split("\n") if e)
