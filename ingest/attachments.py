"""Attachments as documents of their own, linked to the document that carried them.

A parser that finds files inside a file (a mail's attachments) saves each to the staging folder and lists it in
`ParsedDocument.attachments`; `expand` parses each one exactly as if it had been a file — with the caller's
`parse`, in an ingest the bounded worker process, so a hostile attachment fails alone (its error is listed under
the message, the message stays) — and recurses into attachments of attachments (a forwarded message), up to
MAX_DEPTH levels and MAX_TOTAL attachments per file.

Links live in the documents' metadata (no schema of their own):
    attachment        parent     its doc id             attachment       its file name
                      parent_page  the page it hangs on   attachment_path  "fwd.eml › report.pdf" (below the file)
                      attachment_sha256, attachment_bytes  of its content
    carrier           attachments  "report.pdf; data.xlsx"  attachment_ids  their doc ids, in that order
                      attachment_errors  "name: why", one a line

An attachment's id is derived from its parent's id, its place there and its bytes, so the same PDF attached to
two messages (or lying in the folder as well) is a document per carrier, replaced and removed with it. Its
assets sit under the top document's folder (`<root id>/attachments/<id>/`), so whatever removes the file's
assets removes its attachments' too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace

from ingest.errors import FileError, ResourceLimit
from ingest.protocols import ParseOptions
from ingest.types import Attachment, Page, ParsedDocument

MAX_DEPTH = 3  # a message attached to a message attached to a message; deeper ones are listed, not read
MAX_TOTAL = 200  # attachments of one file, all levels together (a nested-mail bomb stops here)

ParseFn = Callable[[str, str, ParseOptions], ParsedDocument]


@dataclass(frozen=True)
class Family:
    """A parsed file and every attachment in it, parents before their children (the order to write them in)."""

    document: ParsedDocument
    attachments: tuple[ParsedDocument, ...] = ()


def expand(doc: ParsedDocument, parse: ParseFn, options: ParseOptions) -> Family:
    """Parse the attachments `doc` staged (and theirs), then remove the staged copies."""
    if not doc.attachments:
        return Family(doc)
    run = _Expansion(parse, options, doc.doc_id)
    return Family(run.adopt(doc, depth=1, chain=""), tuple(run.found))


def parse_family(path: str, sha256: str, options: ParseOptions, parse: ParseFn | None = None) -> Family:
    """Parse a file and its attachments in this process (or with `parse`), staging in a temporary folder."""
    from ingest.parsers import parse_file

    with tempfile.TemporaryDirectory(prefix="citeline-attachments-") as staging:
        staged = replace(options, staging_dir=staging)
        fn = parse or parse_file
        return expand(fn(path, sha256, staged), fn, staged)


class _Expansion:
    def __init__(self, parse: ParseFn, options: ParseOptions, root_id: str) -> None:
        self.parse = parse
        self.prefix = f"{root_id}/attachments/"
        self.options = replace(options, assets_dir=os.path.join(options.assets_dir, root_id, "attachments"))
        self.staging = options.staging_dir
        self.found: list[ParsedDocument] = []

    def adopt(self, doc: ParsedDocument, depth: int, chain: str) -> ParsedDocument:
        """`doc` with its attachments parsed (into `found`) and listed in its metadata."""
        names: list[str] = []
        ids: list[str] = []
        errors = [e for e in doc.metadata.get("attachment_errors", "").split("\n") if e]
        try:
            for k, att in enumerate(doc.attachments):
                try:
                    child = self._child(doc, k, att, depth, chain)
                except FileError as exc:
                    errors.append(" ".join(f"{att.name}: {_reason(exc, att)}".split()))
                    continue
                names.append(att.name)
                ids.append(child.doc_id)
        finally:
            if self.staging:  # what the parser staged for this document (copies not reached included)
                shutil.rmtree(os.path.join(self.staging, doc.doc_id), ignore_errors=True)
        meta = {key: v for key, v in doc.metadata.items() if key != "attachment_errors"}
        meta.update({"attachments": "; ".join(names), "attachment_ids": "; ".join(ids)} if names else {})
        meta.update({"attachment_errors": "\n".join(errors)} if errors else {})
        return replace(doc, metadata=meta, attachments=())

    def _child(self, parent: ParsedDocument, k: int, att: Attachment, depth: int, chain: str) -> ParsedDocument:
        if depth > MAX_DEPTH:
            raise ResourceLimit(f"{att.name}: attachments nested deeper than {MAX_DEPTH} levels are not read")
        if len(self.found) >= MAX_TOTAL:
            raise ResourceLimit(f"{att.name}: over the limit of {MAX_TOTAL} attachments in one file; not read")
        if not att.path:
            raise FileError(f"{att.name}: not saved for parsing (no staging folder)")
        key = hashlib.sha256(f"{parent.doc_id}|{k}|{att.sha256}".encode()).hexdigest()
        size = os.path.getsize(att.path) if os.path.exists(att.path) else 0
        try:
            doc = self.parse(att.path, key, self.options)
        finally:
            _remove(att.path)
        label = f"{chain}{att.name}"
        meta = {**doc.metadata, "parent": parent.doc_id, "parent_page": str(att.page), "attachment": att.name,
                "attachment_path": label, "attachment_sha256": att.sha256, "attachment_bytes": str(size)}
        doc = replace(doc, path=f"{parent.path} › {att.name}", metadata=meta,
                      pages=tuple(_rebased(p, self.prefix) for p in doc.pages))
        slot = len(self.found)
        self.found.append(doc)  # its place, before its own attachments: parents are written first
        self.found[slot] = self.adopt(doc, depth + 1, f"{label} › ")
        return doc


def _rebased(page: Page, prefix: str) -> Page:
    """Asset paths the attachment's parser wrote under its folder, made relative to the KB's assets again."""
    figures = tuple(replace(f, image_path=prefix + f.image_path) for f in page.figures)
    return replace(page, figures=figures, thumbnail=prefix + page.thumbnail if page.thumbnail else None)


def _reason(exc: FileError, att: Attachment) -> str:
    """The error as the user reads it: the attachment's name, not the staged copy's path."""
    text = str(exc).replace(att.path, att.name) if att.path else str(exc)
    return text.split(f"{att.name}: ", 1)[-1] if text.startswith(f"{att.name}: ") else text


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
