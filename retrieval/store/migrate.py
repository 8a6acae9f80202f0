"""Copy a local (folder) knowledge base into another store, e.g. PostgreSQL, without re-parsing or re-embedding:
every document with its pages, chunks, figure descriptions and vectors, every file row (failed ones too), the
manifest (so the embedder check keeps working) and the assets. One transaction per document, so an interrupted
copy leaves whole documents; a re-run skips the documents already there."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.types import BBox, Block, Page, ParsedDocument
from retrieval.errors import KBError
from retrieval.store.local import LocalStore
from retrieval.store.protocol import Store


@dataclass(frozen=True)
class MigrateReport:
    documents: int
    skipped: int
    chunks: int
    vectors: dict[str, int]
    files: int

    def to_json(self) -> dict[str, Any]:
        return {"documents": self.documents, "skipped": self.skipped, "chunks": self.chunks,
                "vectors": dict(self.vectors), "files": self.files}


def copy_kb(source: LocalStore, target: Store, progress: Callable[[int, int], None] | None = None) -> MigrateReport:
    """Copy `source` (opened read-only) into `target` (opened writable)."""
    manifest = source.manifest
    theirs = json.loads(target.get_meta("manifest") or "{}")
    if theirs.get("spaces") and theirs.get("spaces") != manifest.get("spaces"):
        raise KBError(f"{target.location} holds a KB built with other embedders ({sorted(theirs['spaces'])}); "
                      "copy into an empty database")
    target.write_manifest(manifest)
    spaces = {space: int(info["dimension"]) for space, info in manifest.get("spaces", {}).items()}
    with_vectors = {space: set(source.vector_ids(space).tolist()) for space in spaces}
    rows = source.catalog.db.execute(
        "SELECT doc_id, sha256, kind, name, title, author, bytes, outline, metadata FROM documents ORDER BY name"
    ).fetchall()
    files: dict[str, list[dict[str, Any]]] = {}
    for f in source.files():
        files.setdefault(f["doc_id"] if f["status"] == "ingested" else "", []).append(f)
    copied = skipped = chunks = 0
    counts = dict.fromkeys(spaces, 0)
    for n, row in enumerate(rows):
        if target.has_document(row[0]):
            skipped += 1
            continue
        doc = _document(source, row)
        ids = source.chunk_ids(row[0])
        stored = source.get_chunks(ids)
        vectors = {}
        for space, dim in spaces.items():
            positions = [k for k, i in enumerate(ids) if i in with_vectors[space]]
            if positions:
                vectors[space] = (positions, source.load_vectors(space, [ids[k] for k in positions], dim))
                counts[space] += len(positions)
        with target.transaction():
            target.put_document(doc, row[3], int(row[6] or 0), [stored[i].chunk for i in ids],
                                [stored[i].meta for i in ids], vectors)
            for f in files.get(row[0], []):
                target.put_file(f["path"], f["doc_id"], f["sha256"], f["size"], f["mtime"], f["status"], f["error"])
        copied, chunks = copied + 1, chunks + len(ids)
        if progress:
            progress(n + 1, len(rows))
    failed = files.get("", [])
    if failed:
        with target.transaction():
            for f in failed:
                target.put_file(f["path"], f["doc_id"], f["sha256"], f["size"], f["mtime"], f["status"], f["error"])
    _copy_assets(source.assets_dir, target.assets_dir)
    return MigrateReport(copied, skipped, chunks, counts, sum(len(v) for v in files.values()))


def _document(source: LocalStore, row: Any) -> ParsedDocument:
    """The stored document as the parser gave it, as far as the store keeps it (page text as one block)."""
    pages = []
    for number, width, height, ocr, thumbnail, section, text in source.catalog.db.execute(
            "SELECT number, width, height, ocr, thumbnail, section, text FROM pages WHERE doc_id=? ORDER BY number",
            (row[0],)):
        blocks = (Block(text, BBox(0, 0, float(width or 0), float(height or 0))),) if text else ()
        pages.append(Page(int(number), float(width or 0), float(height or 0), blocks, (), bool(ocr), thumbnail,
                          section or ""))
    outline = tuple(tuple(x) for x in json.loads(row[7] or "[]"))
    return ParsedDocument(path="", sha256=row[1], kind=row[2], pages=tuple(pages), title=row[4] or "",
                          author=row[5] or "", outline=outline, metadata=json.loads(row[8] or "{}"))  # type: ignore[arg-type]


def _copy_assets(source: Path, target: Path) -> None:
    if source.is_dir() and source.resolve() != target.resolve():
        shutil.copytree(source, target, dirs_exist_ok=True)
