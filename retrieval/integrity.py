"""The integrity check of a knowledge base (`KnowledgeBase.check()`, `citeline check`).

The catalog is checked in one read snapshot (so a check during an ingest sees one committed state): SQLite's own
integrity check, no row without its document, no vector without its chunk nor chunk without its text vector, the
full-text tables matching their rows, vectors of the size their space says, every referenced asset on disk.
Then each FAISS index as a reader gets it (healed from the catalog) must hold exactly the catalog's vectors.
Derived files a crash may leave behind (a stale FAISS cache, an old manifest.json, temporary files, the assets
of a document that was never committed) are reported as `healed`: the next open or write repairs them.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from retrieval.catalog import Catalog
from retrieval.kb_layout import manifest_file_state, orphan_asset_dirs
from retrieval.vectors import VectorIndex, normalise, read_header


class CheckedKB(Protocol):
    """What the check reads of a local knowledge base (`retrieval.store.local.LocalStore` is one)."""

    root: Path
    catalog: Catalog

    @property
    def assets_dir(self) -> Path: ...

    @property
    def manifest(self) -> dict[str, Any]: ...

    def spaces(self) -> dict[str, dict[str, Any]]: ...

    def index(self, space: str) -> VectorIndex | None: ...

    def index_path(self, space: str) -> Path: ...

EXACT_COMPARE = 20_000  # up to this many vectors a space's index is compared vector by vector, else a sample


@dataclass(frozen=True)
class Problem:
    kind: str  # catalog | orphan | assets | index | manifest | leftover
    detail: str
    healed: bool = False  # a derived file the next open (index) or write (the rest) repairs by itself

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# (kind, what is wrong, a query counting it)
_COUNTS = (
    ("orphan", "chunks of no document",
     "SELECT COUNT(*) FROM chunks WHERE doc_id NOT IN (SELECT doc_id FROM documents)"),
    ("orphan", "pages of no document", "SELECT COUNT(*) FROM pages WHERE doc_id NOT IN (SELECT doc_id FROM documents)"),
    ("orphan", "vectors of no chunk", "SELECT COUNT(*) FROM vectors WHERE id NOT IN (SELECT id FROM chunks)"),
    ("orphan", "image vectors of a chunk that is not a figure",
     "SELECT COUNT(*) FROM vectors v JOIN chunks c ON c.id=v.id WHERE v.space='image' AND c.kind!='figure'"),
    ("orphan", "full-text entries of no chunk",
     "SELECT COUNT(*) FROM chunks_fts WHERE rowid NOT IN (SELECT id FROM chunks)"),
    ("catalog", "chunks missing from the full-text index",
     "SELECT COUNT(*) FROM chunks WHERE id NOT IN (SELECT rowid FROM chunks_fts)"),
    ("orphan", "page full-text entries of no page", "SELECT COUNT(*) FROM pages_fts f WHERE NOT EXISTS"
     " (SELECT 1 FROM pages p WHERE p.doc_id=f.doc_id AND p.number=f.number)"),
    ("catalog", "pages missing from the page full-text index", "SELECT COUNT(*) FROM pages p WHERE NOT EXISTS"
     " (SELECT 1 FROM pages_fts f WHERE f.doc_id=p.doc_id AND f.number=p.number)"),
    ("catalog", "documents whose page count differs from their page rows", "SELECT COUNT(*) FROM documents d"
     " WHERE d.pages != (SELECT COUNT(*) FROM pages p WHERE p.doc_id=d.doc_id)"),
    ("orphan", "documents held by no ingested file nor attached to a document", "SELECT COUNT(*) FROM documents"
     " WHERE doc_id NOT IN (SELECT doc_id FROM files WHERE status='ingested' AND doc_id IS NOT NULL)"
     " AND (json_extract(metadata, '$.parent') IS NULL"
     "  OR json_extract(metadata, '$.parent') NOT IN (SELECT doc_id FROM documents))"),
    ("catalog", "ingested files whose document is missing", "SELECT COUNT(*) FROM files WHERE status='ingested'"
     " AND (doc_id IS NULL OR doc_id NOT IN (SELECT doc_id FROM documents))"),
)


def check_kb(kb: CheckedKB) -> list[Problem]:
    problems: list[Problem] = []
    with kb.catalog.snapshot() as db:
        problems += _catalog(db)
        problems += _vectors(kb, db)
        problems += _assets(kb, db)
        problems += _indexes(kb)
    problems += _leftovers(kb)
    return problems


def _catalog(db: sqlite3.Connection) -> list[Problem]:
    verdict = [r[0] for r in db.execute("PRAGMA integrity_check")]
    out = [] if verdict == ["ok"] else [Problem("catalog", "SQLite integrity check: " + "; ".join(verdict[:5]))]
    if db.execute("SELECT value FROM meta WHERE key='generation'").fetchone() is None:
        out.append(Problem("catalog", "no generation in the catalog's meta table"))
    for kind, what, query in _COUNTS:
        n = db.execute(query).fetchone()[0]
        if n:
            out.append(Problem(kind, f"{n} {what}"))
    return out


def _vectors(kb: CheckedKB, db: sqlite3.Connection) -> list[Problem]:
    spaces = kb.spaces()
    out: list[Problem] = []
    for space, size, n in db.execute("SELECT space, length(vec), COUNT(*) FROM vectors GROUP BY space, length(vec)"):
        if space not in spaces:
            out.append(Problem("orphan", f"{n} vectors in space '{space}', which the manifest does not have"))
        elif size != 4 * int(spaces[space]["dimension"]):
            out.append(Problem("catalog", f"{n} '{space}' vectors of {size // 4} dimensions, the manifest says "
                                          f"{spaces[space]['dimension']} (re-embed: `citeline reindex`)"))
    if "text" in spaces:
        n = db.execute("SELECT COUNT(*) FROM chunks WHERE id NOT IN (SELECT id FROM vectors WHERE space='text')")
        if missing := n.fetchone()[0]:
            out.append(Problem("orphan", f"{missing} chunks without their text vector"))
    elif db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]:
        out.append(Problem("manifest", "chunks are stored but the manifest has no text space"))
    return out


def _assets(kb: CheckedKB, db: sqlite3.Connection) -> list[Problem]:
    missing = [rel for (rel,) in db.execute("SELECT thumbnail FROM pages WHERE thumbnail IS NOT NULL"
                                            " UNION ALL SELECT figure_path FROM chunks WHERE figure_path IS NOT NULL")
               if not (kb.assets_dir / rel).is_file()]
    out = [Problem("assets", f"{len(missing)} page thumbnails or figure crops are missing, e.g. {missing[0]}"
                             " (re-ingest the file: `citeline remove` it, then `citeline ingest` it)")
           ] if missing else []
    orphans = orphan_asset_dirs(kb.assets_dir, kb.catalog.doc_ids())
    if orphans:
        out.append(Problem("leftover", f"{len(orphans)} asset folders of no document, e.g. {orphans[0].name}"
                                       " (removed by the next write)", healed=True))
    return out


def _indexes(kb: CheckedKB) -> list[Problem]:
    """Inside the caller's snapshot: the file on disk (stale is healed on open), then the index as healed."""
    out: list[Problem] = []
    generation, epoch = kb.catalog.generation, kb.catalog.vectors_epoch
    for space, info in kb.spaces().items():
        want = kb.catalog.vector_ids(space)
        header = read_header(kb.index_path(space))
        if header is None and len(want):
            out.append(Problem("index", f"the '{space}' FAISS cache is missing or unreadable (rebuilt on open)", True))
        elif header is not None and (header.get("epoch") != epoch or header.get("generation") != generation):
            out.append(Problem("index", f"the '{space}' FAISS cache is stale (generation {header.get('generation')}"
                                        f", epoch {header.get('epoch')}; the catalog is at {generation}, epoch "
                                        f"{epoch}): healed on open", healed=True))
        index = kb.index(space)
        have = np.sort(index.ids()) if index is not None else np.zeros(0, np.int64)
        if not np.array_equal(have, want):
            extra, lost = np.setdiff1d(have, want).size, np.setdiff1d(want, have).size
            out.append(Problem("index", f"the '{space}' index does not match the catalog after healing: {extra} "
                                        f"ids too many, {lost} missing"))
            continue
        if index is not None and len(want):
            sample = want if len(want) <= EXACT_COMPARE else want[:: len(want) // EXACT_COMPARE + 1]
            stored = normalise(kb.catalog.load_vectors(space, sample.tolist(), int(info["dimension"])))
            held = np.vstack([index.index.reconstruct(int(i)) for i in sample])
            if not np.allclose(held, stored, atol=1e-4):
                out.append(Problem("index", f"the '{space}' index holds vectors that differ from the catalog's"))
    return out


def _leftovers(kb: CheckedKB) -> list[Problem]:
    out: list[Problem] = []
    manifest = kb.manifest
    state = manifest_file_state(kb.root, manifest) if manifest else None
    if state:
        out.append(Problem("manifest", f"{state} (the catalog holds the truth; rewritten by the next write)", True))
    for tmp in sorted([kb.root / "manifest.json.tmp", *(kb.root / "index").glob("*.tmp")]):
        if tmp.exists():
            out.append(Problem("leftover", f"temporary file {tmp.relative_to(kb.root)} from an interrupted write"
                                           " (removed by the next write)", healed=True))
    return out
