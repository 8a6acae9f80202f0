"""The SQLite catalog: documents, files, pages, chunks, their vectors and a BM25 (FTS5) index, in one file.

SQLite is the source of truth. Each document is written in one transaction (rows, vectors and full-text
entries together), so a kill at any moment leaves either the old state or the new one. The FAISS files are
caches derived from the `vectors` table, tagged with the catalog's `generation` so a stale one is detected and
brought up to date on open, and with its `vectors_epoch` (bumped by a reindex) so one holding another model's
vectors is rebuilt. Readers group their reads in `snapshot()`, so a commit never lands between two of them.
Part of the local backend (`retrieval.store.local`): nothing else runs SQL on it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ingest.types import BBox, Chunk, ParsedDocument
from retrieval import faults
from retrieval.store.protocol import DocMeta, DocumentRow, StoredChunk

__all__ = ["Catalog", "DocumentRow", "StoredChunk"]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents(
  doc_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, title TEXT, author TEXT,
  pages INTEGER NOT NULL, bytes INTEGER, outline TEXT, metadata TEXT, ingested_at REAL);
CREATE TABLE IF NOT EXISTS files(
  path TEXT PRIMARY KEY, doc_id TEXT, sha256 TEXT, size INTEGER, mtime REAL, status TEXT NOT NULL, error TEXT,
  updated_at REAL);
CREATE INDEX IF NOT EXISTS files_doc ON files(doc_id);
CREATE TABLE IF NOT EXISTS pages(
  doc_id TEXT NOT NULL, number INTEGER NOT NULL, width REAL, height REAL, ocr INTEGER, thumbnail TEXT,
  section TEXT, text TEXT, PRIMARY KEY(doc_id, number));
CREATE TABLE IF NOT EXISTS chunks(
  id INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id TEXT UNIQUE NOT NULL, doc_id TEXT NOT NULL, page INTEGER NOT NULL,
  kind TEXT NOT NULL, text TEXT NOT NULL, bbox TEXT, section TEXT, ocr INTEGER, figure_path TEXT, tokens INTEGER,
  meta TEXT);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, page);
CREATE TABLE IF NOT EXISTS vectors(space TEXT NOT NULL, id INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY(space, id));
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, section, tokenize='porter unicode61');
CREATE VIRTUAL TABLE IF NOT EXISTS pages_fts USING fts5(doc_id UNINDEXED, number UNINDEXED, text,
  tokenize='porter unicode61');
"""


class Catalog:
    def __init__(self, path: str, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
        self.db = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA busy_timeout=30000")
        if not readonly:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            # both rows in one transaction (a crash between two autocommits once left a KB without a generation,
            # whose FAISS caches then never looked stale); INSERT OR IGNORE also completes such a KB
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('schema', ?)", (str(SCHEMA_VERSION),))
            self.db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES('generation', '0')")
            self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    # -- meta -------------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    @property
    def vectors_epoch(self) -> int:
        """The generation at which every vector was last rewritten (reindex): a FAISS cache saved under another
        epoch holds vectors of another model, even where its ids match, and is rebuilt rather than synced."""
        return int(self.get_meta("vectors_epoch") or 0)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write; bumps the generation so FAISS caches know they are stale."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
            self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
            faults.point("before_catalog_commit")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        faults.point("after_catalog_commit")

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """Several reads that see one committed state (WAL snapshot isolation), whatever a writer commits
        meanwhile. Inside a transaction (the writer's own) it is that transaction."""
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN")
        try:
            yield self.db
        finally:
            self.db.execute("COMMIT")

    # -- files ------------------------------------------------------------------------------------------
    def file_row(self, path: str) -> dict[str, Any] | None:
        cur = self.db.execute("SELECT path, doc_id, sha256, size, mtime, status, error FROM files WHERE path=?",
                              (path,))
        row = cur.fetchone()
        return dict(zip([c[0] for c in cur.description], row, strict=True)) if row else None

    def files(self) -> list[dict[str, Any]]:
        cur = self.db.execute("SELECT path, doc_id, sha256, size, mtime, status, error FROM files ORDER BY path")
        names = [c[0] for c in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def has_document(self, doc_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM documents WHERE doc_id=?", (doc_id,)).fetchone() is not None

    def put_file(self, db: sqlite3.Connection, path: str, doc_id: str | None, sha: str | None, size: int,
                 mtime: float, status: str, error: str | None = None) -> None:
        db.execute(
            "INSERT OR REPLACE INTO files(path, doc_id, sha256, size, mtime, status, error, updated_at)"
            " VALUES(?,?,?,?,?,?,?,?)",
            (path, doc_id, sha, size, mtime, status, error, time.time()),
        )

    def drop_file(self, db: sqlite3.Connection, path: str) -> list[int]:
        """Forget a path; its document goes too when no other path holds the same content. Returns vector ids."""
        row = db.execute("SELECT doc_id FROM files WHERE path=?", (path,)).fetchone()
        db.execute("DELETE FROM files WHERE path=?", (path,))
        if not row or not row[0]:
            return []
        still = db.execute("SELECT 1 FROM files WHERE doc_id=? AND status='ingested'", (row[0],)).fetchone()
        return [] if still else self.drop_document(db, row[0])

    def drop_document(self, db: sqlite3.Connection, doc_id: str) -> list[int]:
        """Forget a document and the documents attached to it (`retrieval.attachments`). Returns vector ids."""
        attached = [i for child in self.child_ids(db, doc_id) for i in self.drop_document(db, child)]
        ids = [r[0] for r in db.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id,))]
        db.executemany("DELETE FROM vectors WHERE id=?", [(i,) for i in ids])
        db.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(i,) for i in ids])
        db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
        db.execute("DELETE FROM pages WHERE doc_id=?", (doc_id,))
        db.execute("DELETE FROM pages_fts WHERE doc_id=?", (doc_id,))
        db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
        return attached + ids

    # -- documents --------------------------------------------------------------------------------------
    def put_document(self, db: sqlite3.Connection, doc: ParsedDocument, name: str, size: int,
                     chunks: Sequence[Chunk], chunk_meta: Sequence[dict[str, Any]],
                     vectors: Mapping[str, tuple[Sequence[int], np.ndarray]]) -> list[int]:
        """Insert a document with its pages and chunks; `vectors[space] = (chunk positions, matrix)`.

        Returns the row ids of the chunks in order: the ids their vectors carry in FAISS (never reused).
        """
        self.drop_document(db, doc.doc_id)
        db.execute(
            "INSERT INTO documents VALUES(?,?,?,?,?,?,?,?,?,?,?)",
            (doc.doc_id, doc.sha256, doc.kind, name, doc.title, doc.author, len(doc.pages), size,
             json.dumps(doc.outline), json.dumps(doc.metadata), time.time()),
        )
        for p in doc.pages:
            text = p.text
            db.execute("INSERT INTO pages VALUES(?,?,?,?,?,?,?,?)",
                       (doc.doc_id, p.number, p.width, p.height, int(p.ocr), p.thumbnail, p.section, text))
            db.execute("INSERT INTO pages_fts(doc_id, number, text) VALUES(?,?,?)", (doc.doc_id, p.number, text))
        ids: list[int] = []
        for c, meta in zip(chunks, chunk_meta, strict=True):
            cur = db.execute(
                "INSERT INTO chunks(chunk_id, doc_id, page, kind, text, bbox, section, ocr, figure_path, tokens, meta)"
                " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                (c.chunk_id, c.doc_id, c.page, c.kind, c.text, json.dumps(c.bbox.as_list()) if c.bbox else None,
                 c.section, int(c.ocr), c.figure_path, c.tokens, json.dumps(meta)),
            )
            rowid = int(cur.lastrowid or 0)
            ids.append(rowid)
            db.execute("INSERT INTO chunks_fts(rowid, text, section) VALUES(?,?,?)",
                       (rowid, c.text + ("\n" + meta["tags"] if meta.get("tags") else ""), c.section))
        for space, (positions, matrix) in vectors.items():
            db.executemany(
                "INSERT INTO vectors(space, id, vec) VALUES(?,?,?)",
                [(space, ids[pos], np.asarray(matrix[i], dtype=np.float32).tobytes())
                 for i, pos in enumerate(positions)],
            )
        return ids

    def documents(self) -> list[DocumentRow]:
        rows = self.db.execute(
            "SELECT d.doc_id, d.name, d.kind, d.title, d.pages,"
            " (SELECT COUNT(*) FROM chunks c WHERE c.doc_id=d.doc_id),"
            " (SELECT COUNT(*) FROM chunks c WHERE c.doc_id=d.doc_id AND c.kind='figure')"
            " FROM documents d ORDER BY d.name"
        ).fetchall()
        paths: dict[str, list[str]] = {}
        for path, doc_id in self.db.execute("SELECT path, doc_id FROM files WHERE status='ingested'"):
            paths.setdefault(doc_id, []).append(path)
        return [DocumentRow(r[0], r[1], r[2], r[3] or "", r[4], tuple(paths.get(r[0], ())), r[5], r[6]) for r in rows]

    def doc_meta(self, doc_ids: Sequence[str] | None = None) -> dict[str, DocMeta]:
        sql = "SELECT doc_id, name, kind, metadata FROM documents"
        if doc_ids is None:
            rows = self.db.execute(sql).fetchall()
        else:
            wanted = list(dict.fromkeys(doc_ids))
            rows = [r for i in range(0, len(wanted), 500) for r in self.db.execute(
                f"{sql} WHERE doc_id IN ({','.join('?' * len(wanted[i:i + 500]))})", wanted[i:i + 500])]
        return {r[0]: DocMeta(r[0], r[1], r[2], json.loads(r[3]) if r[3] else {}) for r in rows}

    def child_ids(self, db: sqlite3.Connection, doc_id: str) -> list[str]:
        """The documents attached to `doc_id` (`ingest.attachments`; one level, the caller recurses)."""
        return [r[0] for r in db.execute(
            "SELECT doc_id FROM documents WHERE json_extract(metadata, '$.parent') = ?", (doc_id,))]

    def page(self, doc_id: str, number: int) -> dict[str, Any] | None:
        """A page's size (its own coordinates: PDF points, pixels for images), thumbnail, one source path, its
        text and section and its document's name."""
        row = self.db.execute(
            "SELECT p.width, p.height, p.thumbnail, (SELECT f.path FROM files f WHERE f.doc_id=p.doc_id"
            " AND f.status='ingested' ORDER BY f.path LIMIT 1), p.text, p.section, d.name FROM pages p"
            " JOIN documents d USING(doc_id) WHERE p.doc_id=? AND p.number=?",
            (doc_id, number),
        ).fetchone()
        return None if row is None else {"width": row[0], "height": row[1], "thumbnail": row[2], "path": row[3],
                                         "text": row[4] or "", "section": row[5] or "", "doc_name": row[6]}

    def page_texts(self, doc_id: str, number: int | None = None) -> dict[int, str]:
        sql, args = "SELECT number, text FROM pages WHERE doc_id=?", [doc_id]
        if number is not None:
            sql, args = sql + " AND number=?", [doc_id, str(number)]
        return {int(n): text or "" for n, text in self.db.execute(sql + " ORDER BY number", args)}

    def chunk_ids(self, doc_id: str | None = None, page: int | None = None, kind: str | None = None) -> list[int]:
        """Chunk ids in id order (the order they were written), optionally of one document, page and kind."""
        parts, args = ["1"], []
        for col, value in (("doc_id", doc_id), ("page", page), ("kind", kind)):
            if value is not None:
                parts.append(f"{col}=?")
                args.append(value)
        return [int(r[0]) for r in self.db.execute(f"SELECT id FROM chunks WHERE {' AND '.join(parts)} ORDER BY id",
                                                    args)]

    def doc_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT doc_id FROM documents")}

    # -- chunks and vectors -----------------------------------------------------------------------------
    def get_chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        out: dict[int, StoredChunk] = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            for row in self.db.execute(
                "SELECT c.id, c.doc_id, c.page, c.kind, c.text, c.bbox, c.section, c.ocr, c.figure_path, c.tokens,"
                f" c.meta, d.name FROM chunks c JOIN documents d USING(doc_id) WHERE c.id IN ({marks})", part
            ):
                chunk = Chunk(row[1], row[2], row[3], row[4], BBox.from_list(json.loads(row[5]) if row[5] else None),
                              row[6] or "", bool(row[7]), row[8], row[9] or 0)
                out[row[0]] = StoredChunk(row[0], chunk, row[11], json.loads(row[10] or "{}"))
        return out

    def vector_ids(self, space: str) -> np.ndarray:
        rows = self.db.execute("SELECT id FROM vectors WHERE space=? ORDER BY id", (space,)).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def load_vectors(self, space: str, ids: Sequence[int], dimension: int) -> np.ndarray:
        out = np.zeros((len(ids), dimension), dtype=np.float32)
        index = {int(i): k for k, i in enumerate(ids)}
        id_list = list(index)
        for start in range(0, len(id_list), 500):
            part = id_list[start : start + 500]
            marks = ",".join("?" * len(part))
            for rowid, blob in self.db.execute(
                f"SELECT id, vec FROM vectors WHERE space=? AND id IN ({marks})", [space, *part]
            ):
                out[index[rowid]] = np.frombuffer(blob, dtype=np.float32)
        return out

    def replace_vectors(self, db: sqlite3.Connection, vectors: Mapping[str, tuple[Sequence[int], np.ndarray]]) -> None:
        """Every vector replaced (reindex), inside the caller's transaction; ids are chunk ids."""
        db.execute("DELETE FROM vectors")
        for space, (ids, matrix) in vectors.items():
            db.executemany("INSERT INTO vectors(space, id, vec) VALUES(?,?,?)",
                           [(space, int(i), np.asarray(matrix[k], dtype=np.float32).tobytes())
                            for k, i in enumerate(ids)])

    def counts(self) -> dict[str, int]:
        q = self.db.execute
        return {
            "documents": q("SELECT COUNT(*) FROM documents").fetchone()[0],
            "pages": q("SELECT COUNT(*) FROM pages").fetchone()[0],
            "chunks": q("SELECT COUNT(*) FROM chunks WHERE kind!='figure'").fetchone()[0],
            "figures": q("SELECT COUNT(*) FROM chunks WHERE kind='figure'").fetchone()[0],
            "ocr_pages": q("SELECT COUNT(*) FROM pages WHERE ocr=1").fetchone()[0],
            "failed_files": q("SELECT COUNT(*) FROM files WHERE status='failed'").fetchone()[0],
        }
