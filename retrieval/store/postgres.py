"""The PostgreSQL backend: rows, vectors (pgvector HNSW per embedding space), full-text (tsvector 'english' + GIN)
and the manifest in one database, behind a connection pool. `pip install 'citeline[postgres]'`.

- One transaction per document (PostgreSQL's own atomicity: a killed writer leaves nothing of its document).
- One writer: a session advisory lock, held on a dedicated connection for the writer's life and freed by the
  server when that connection dies (kill -9 included); a second writer fails at once naming the holder.
- Readers never block and see committed documents; `snapshot()` is a REPEATABLE READ transaction.
- Filtered vector search uses `hnsw.iterative_scan = relaxed_order` (pgvector ≥ 0.8), so a selective filter
  (one document, a page range, one modality) still returns k hits; results are re-sorted by distance.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ingest.types import Chunk, ParsedDocument
from retrieval import faults
from retrieval.errors import KBError
from retrieval.lexical import query_terms
from retrieval.store import pg_schema as sch
from retrieval.store.assets import FolderAssets
from retrieval.store.pg_lock import acquire_writer_lock, check_writer_lock
from retrieval.store.pg_rows import CHUNK_COLS, copy_vectors, insert_chunks, insert_pages, stored_chunks
from retrieval.store.protocol import DocMeta, DocumentRow, StoredChunk, VectorRows, masked
from retrieval.types import SearchFilters
from retrieval.vectors import normalise

INSTALL = "pip install 'citeline[postgres]'  (psycopg[binary]==3.3.9 psycopg-pool==3.3.3 pgvector==0.5.1)"


def _modules() -> tuple[Any, Any, Any]:
    try:
        import psycopg
        import psycopg_pool
        from pgvector.psycopg import register_vector
    except ImportError as exc:
        raise KBError(f"a postgresql:// knowledge base needs psycopg 3, psycopg-pool and pgvector: {INSTALL}") from exc
    return psycopg, psycopg_pool, register_vector


def check_writer(dsn: str) -> None:
    """`KBLocked`, naming the holder, while a writer holds the KB at `dsn` (takes nothing, writes nothing)."""
    check_writer_lock(_modules()[0], dsn, masked(dsn))


class PostgresStore:
    EF_SEARCH = 128  # as the local HNSW's efSearch; raised to k when k is larger
    MAX_SCAN_TUPLES = 50_000  # how far an iterative scan may walk the graph for a selective filter
    EXACT_SUBSET = 8192  # a filter passing at most this many chunks is searched exactly (as the local backend)
    EXACT_SHARE = 0.02  # ... or at most this share of the space's rows, up to EXACT_MAX (exact: ~4 µs a row here)
    EXACT_MAX = 50_000

    def __init__(self, dsn: str, *, writable: bool = False, assets_dir: Path | None = None,
                 iterative_scan: bool = True, pool_size: int = 4) -> None:
        psycopg, pool_mod, self._register_vector = _modules()
        self.dsn = dsn
        self.location = masked(dsn)  # no password, for messages and status
        self.assets = FolderAssets(assets_dir or Path(".citeline-assets"))
        self.assets_dir = self.assets.root
        self.iterative_scan = iterative_scan
        self._tx = threading.local()  # .conn: this thread's transaction or snapshot connection
        self._lock_conn: Any = None
        try:
            setup = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise KBError(f"cannot connect to the knowledge base at {self.location}: {exc}".strip()) from exc
        with setup:
            if writable:
                sch.migrate(setup)
            elif sch.schema_version(setup) == 0:
                raise KBError(f"no knowledge base at {self.location}: create one with "
                              f"`citeline ingest FOLDER --kb {self.location}`")
            elif sch.schema_version(setup) > sch.SCHEMA_VERSION:
                raise KBError(f"the knowledge base at {self.location} has schema version "
                              f"{sch.schema_version(setup)}, newer than this Citeline ({sch.SCHEMA_VERSION}): upgrade")
        if writable:
            self._lock_conn = acquire_writer_lock(psycopg, dsn, self.location)
            self.assets_dir.mkdir(parents=True, exist_ok=True)
        self._pool = pool_mod.ConnectionPool(dsn, min_size=1, max_size=pool_size, configure=self._configure,
                                             kwargs={"connect_timeout": 10}, open=True, timeout=30)

    # -- connections ------------------------------------------------------------------------------------
    def _configure(self, conn: Any) -> None:
        conn.autocommit = True
        conn.execute(f"SET search_path = {sch.SCHEMA}, public")
        conn.execute("SET hnsw.iterative_scan = " + ("relaxed_order" if self.iterative_scan else "off"))
        conn.execute(f"SET hnsw.max_scan_tuples = {self.MAX_SCAN_TUPLES}")
        conn.execute(f"SET hnsw.ef_search = {self.EF_SEARCH}")
        self._register_vector(conn)
        conn.autocommit = False

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        """This thread's transaction connection, else a pooled one for one read (committed at the end)."""
        held = getattr(self._tx, "conn", None)
        if held is not None:
            yield held
            return
        with self._pool.connection() as conn:
            yield conn

    @property
    def writable(self) -> bool:
        return self._lock_conn is not None

    def close(self) -> None:
        if self._lock_conn is not None:
            self._sweep()
        self._pool.close()
        if self._lock_conn is not None:
            self._lock_conn.close()  # frees the advisory lock
            self._lock_conn = None

    def _sweep(self) -> None:
        """Asset folders of documents that were never committed (a killed writer), removed by the next one."""
        import shutil

        known = {r[0] for r in self._rows("SELECT doc_id FROM documents")}
        for folder in self.assets.orphans(known):
            shutil.rmtree(folder, ignore_errors=True)

    # -- meta and transactions --------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self._conn() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key=%s", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._conn() as conn:
            conn.execute("INSERT INTO meta(key, value) VALUES(%s, %s) ON CONFLICT (key) DO UPDATE"
                         " SET value = EXCLUDED.value", (key, value))

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.set_meta("manifest", json.dumps(manifest))

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation") or 0)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic write (READ COMMITTED, the single writer holds the lock); bumps the generation."""
        if getattr(self._tx, "conn", None) is not None:
            raise KBError("nested store transaction")
        with self._pool.connection() as conn:
            self._tx.conn = conn
            try:
                yield
                conn.execute("UPDATE meta SET value = (value::bigint + 1)::text WHERE key='generation'")
                faults.point("before_catalog_commit")
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                self._tx.conn = None
        faults.point("after_catalog_commit")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Several reads that see one committed state (REPEATABLE READ); inside a transaction, that one."""
        if getattr(self._tx, "conn", None) is not None:
            yield
            return
        with self._pool.connection() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            self._tx.conn = conn
            try:
                yield
            finally:
                self._tx.conn = None
                conn.rollback()

    # -- writes -----------------------------------------------------------------------------------------
    def put_document(self, doc: ParsedDocument, name: str, size: int, chunks: Sequence[Chunk],
                     chunk_meta: Sequence[dict[str, Any]], vectors: VectorRows) -> list[int]:
        with self._conn() as conn:
            self._drop_document(conn, doc.doc_id)
            conn.execute("INSERT INTO documents VALUES(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                         (doc.doc_id, doc.sha256, doc.kind, name, doc.title, doc.author, len(doc.pages), size,
                          json.dumps(doc.outline), json.dumps(doc.metadata), time.time()))
            self._insert_pages(conn, doc)
            ids = self._insert_chunks(conn, chunks, chunk_meta)
            for space, (positions, matrix) in vectors.items():
                self._insert_vectors(conn, space, [ids[p] for p in positions], matrix)
        return ids

    def _insert_pages(self, conn: Any, doc: ParsedDocument) -> None:
        insert_pages(conn, doc)

    CHUNK_BATCH = 5000  # chunks per INSERT statement (a very long document takes several, in one transaction)

    def _insert_chunks(self, conn: Any, chunks: Sequence[Chunk], chunk_meta: Sequence[dict[str, Any]]) -> list[int]:
        return insert_chunks(conn, chunks, chunk_meta, self.CHUNK_BATCH)

    def _insert_vectors(self, conn: Any, space: str, ids: Sequence[int], matrix: np.ndarray) -> None:
        if len(ids):
            matrix = normalise(matrix)
            copy_vectors(conn, self._space_table(conn, space, create_dim=matrix.shape[1]), ids, matrix)

    def _space_table(self, conn: Any, space: str, create_dim: int | None = None) -> str | None:
        """The table of a space's vectors (created, with its HNSW index, on the first write of the space)."""
        row = conn.execute("SELECT tbl FROM spaces WHERE space=%s", (space,)).fetchone()
        if row is not None:
            return str(row[0])
        return None if create_dim is None else sch.create_space(conn, space, create_dim)

    def put_file(self, path: str, doc_id: str | None, sha: str | None, size: int, mtime: float, status: str,
                 error: str | None = None) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO files(path, doc_id, sha256, size, mtime, status, error, updated_at)"
                " VALUES(%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (path) DO UPDATE SET doc_id=EXCLUDED.doc_id,"
                " sha256=EXCLUDED.sha256, size=EXCLUDED.size, mtime=EXCLUDED.mtime, status=EXCLUDED.status,"
                " error=EXCLUDED.error, updated_at=EXCLUDED.updated_at",
                (path, doc_id, sha, size, mtime, status, error, time.time()))

    def drop_file(self, path: str) -> list[int]:
        """Forget a path; its document goes too when no other path holds the same content. Returns chunk ids."""
        with self._conn() as conn:
            row = conn.execute("DELETE FROM files WHERE path=%s RETURNING doc_id", (path,)).fetchone()
            if not row or not row[0]:
                return []
            still = conn.execute("SELECT 1 FROM files WHERE doc_id=%s AND status='ingested'", (row[0],)).fetchone()
            return [] if still else self._drop_document(conn, row[0])

    def _drop_document(self, conn: Any, doc_id: str) -> list[int]:
        """Drop a document and, first, the documents attached to it (a mail's attachments, `ingest.attachments`:
        linked by `parent` in their metadata, held by no file row)."""
        children = [r[0] for r in conn.execute(
            "SELECT doc_id FROM documents WHERE metadata IS NOT NULL AND metadata::jsonb->>'parent' = %s", (doc_id,))]
        ids = [i for child in children for i in self._drop_document(conn, child)]
        ids += [int(r[0]) for r in conn.execute("SELECT id FROM chunks WHERE doc_id=%s", (doc_id,))]
        conn.execute("DELETE FROM documents WHERE doc_id=%s", (doc_id,))  # pages, chunks, vectors cascade
        return ids

    def replace_vectors(self, vectors: VectorRows, manifest: dict[str, Any]) -> None:
        with self.transaction(), self._conn() as conn:
            for table in [r[0] for r in conn.execute("SELECT tbl FROM spaces")]:
                conn.execute(f"DROP TABLE {table}")
            conn.execute("DELETE FROM spaces")
            for space, (ids, matrix) in vectors.items():
                self._insert_vectors(conn, space, ids, matrix)
            conn.execute("UPDATE meta SET value = %s WHERE key = 'manifest'", (json.dumps(manifest),))
            conn.execute("UPDATE meta SET value = ((SELECT value FROM meta WHERE key='generation')::bigint + 1)"
                         "::text WHERE key = 'vectors_epoch'")

    # -- reads ------------------------------------------------------------------------------------------
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._conn() as conn:
            return list(conn.execute(sql, params).fetchall())

    def file_row(self, path: str) -> dict[str, Any] | None:
        rows = self.files(path)
        return rows[0] if rows else None

    def files(self, path: str | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE path=%s", (path,)) if path is not None else ("", ())
        rows = self._rows(f"SELECT path, doc_id, sha256, size, mtime, status, error FROM files {where} ORDER BY path",
                          args)
        names = ("path", "doc_id", "sha256", "size", "mtime", "status", "error")
        return [dict(zip(names, r, strict=True)) for r in rows]

    def has_document(self, doc_id: str) -> bool:
        return bool(self._rows("SELECT 1 FROM documents WHERE doc_id=%s", (doc_id,)))

    def documents(self) -> list[DocumentRow]:
        rows = self._rows(
            "SELECT d.doc_id, d.name, d.kind, d.title, d.pages, count(c.id),"
            " count(c.id) FILTER (WHERE c.kind='figure'),"
            " (SELECT array_agg(f.path ORDER BY f.path) FROM files f WHERE f.doc_id=d.doc_id AND f.status='ingested')"
            " FROM documents d LEFT JOIN chunks c ON c.doc_id=d.doc_id GROUP BY d.doc_id ORDER BY d.name")
        return [DocumentRow(r[0], r[1], r[2], r[3] or "", r[4], tuple(r[7] or ()), r[5], r[6]) for r in rows]

    def doc_meta(self, doc_ids: Sequence[str] | None = None) -> dict[str, DocMeta]:
        sql = "SELECT doc_id, name, kind, metadata FROM documents"
        rows = self._rows(sql) if doc_ids is None else self._rows(sql + " WHERE doc_id = ANY(%s)", (list(doc_ids),))
        return {r[0]: DocMeta(r[0], r[1], r[2], json.loads(r[3]) if r[3] else {}) for r in rows}

    def page(self, doc_id: str, number: int) -> dict[str, Any] | None:
        rows = self._rows(
            "SELECT p.width, p.height, p.thumbnail, (SELECT f.path FROM files f WHERE f.doc_id=p.doc_id"
            " AND f.status='ingested' ORDER BY f.path LIMIT 1), p.text, p.section, d.name FROM pages p"
            " JOIN documents d USING(doc_id) WHERE p.doc_id=%s AND p.number=%s", (doc_id, number))
        if not rows:
            return None
        r = rows[0]
        return {"width": r[0], "height": r[1], "thumbnail": r[2], "path": r[3], "text": r[4] or "",
                "section": r[5] or "", "doc_name": r[6]}

    def page_texts(self, doc_id: str, number: int | None = None) -> dict[int, str]:
        extra, args = (" AND number=%s", (doc_id, number)) if number is not None else ("", (doc_id,))
        return {int(n): t or "" for n, t in self._rows(f"SELECT number, text FROM pages WHERE doc_id=%s{extra}"
                                                       " ORDER BY number", args)}

    def chunk_ids(self, doc_id: str | None = None, page: int | None = None, kind: str | None = None) -> list[int]:
        parts, args = ["TRUE"], []
        for col, value in (("doc_id", doc_id), ("page", page), ("kind", kind)):
            if value is not None:
                parts.append(f"{col}=%s")
                args.append(value)
        return [int(r[0]) for r in self._rows(f"SELECT id FROM chunks WHERE {' AND '.join(parts)} ORDER BY id", args)]

    def get_chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        rows = self._rows(f"SELECT {CHUNK_COLS} FROM chunks c JOIN documents d USING(doc_id) WHERE c.id = ANY(%s)",
                          ([int(i) for i in ids],)) if len(ids) else []
        return stored_chunks(rows)

    def vector_ids(self, space: str) -> np.ndarray:
        with self._conn() as conn:
            table = self._space_table(conn, space)
            rows = conn.execute(f"SELECT id FROM {table} ORDER BY id").fetchall() if table else []
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def load_vectors(self, space: str, ids: Sequence[int], dimension: int) -> np.ndarray:
        """The stored (L2-normalised) vectors of `ids`, in that order; zeros where one is missing."""
        out = np.zeros((len(ids), dimension), dtype=np.float32)
        with self._conn() as conn:
            table = self._space_table(conn, space)
            if table is None or not len(ids):
                return out
            where = {int(i): k for k, i in enumerate(ids)}
            for i, vec in conn.execute(f"SELECT id, embedding FROM {table} WHERE id = ANY(%s)", (list(where),)):
                out[where[int(i)]] = np.asarray(vec.to_numpy() if hasattr(vec, "to_numpy") else vec, dtype=np.float32)
        return out

    def counts(self) -> dict[str, int]:
        r = self._rows(
            "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM pages),"
            " (SELECT count(*) FROM chunks WHERE kind!='figure'), (SELECT count(*) FROM chunks WHERE kind='figure'),"
            " (SELECT count(*) FROM pages WHERE ocr=1), (SELECT count(*) FROM files WHERE status='failed')")[0]
        return dict(zip(("documents", "pages", "chunks", "figures", "ocr_pages", "failed_files"),
                        (int(v) for v in r), strict=True))

    # -- search -----------------------------------------------------------------------------------------
    def vector_search(self, space: str, vector: np.ndarray, k: int, filters: SearchFilters | None = None,
                      kinds: tuple[str, ...] = ()) -> list[int]:
        if k <= 0:
            return []
        f = sch.filter_sql(filters)
        where, params = f.where, list(f.params)
        if kinds:
            where += " AND c.kind = ANY(%s)"
            params.append(list(kinds))
        query = normalise(np.asarray(vector, dtype=np.float32).reshape(1, -1))[0]
        with self._conn() as conn:
            table = self._space_table(conn, space)
            if table is None:
                return []
            join = "" if where == "TRUE" else " JOIN chunks c ON c.id = v.id JOIN documents d ON d.doc_id = c.doc_id"
            exact = join and self._few(conn, table, where, params)
            if k > self.EF_SEARCH and not exact:  # the session default is EF_SEARCH; widened for this query
                conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(min(k, 1000)),))
            # `+ 0` hides the indexed operator from the planner: an exact scan over the few filtered rows
            order = "(v.embedding <#> %s) + 0" if exact else "v.embedding <#> %s"
            rows = conn.execute(
                f"WITH hits AS MATERIALIZED (SELECT v.id, v.embedding <#> %s AS dist FROM {table} v{join}"
                f" WHERE {where} ORDER BY {order} LIMIT %s) SELECT id FROM hits ORDER BY dist, id",
                [query, *params, query, int(k)]).fetchall()
        return [int(r[0]) for r in rows]

    def _few(self, conn: Any, table: str, where: str, params: list[Any]) -> bool:
        """Whether the filter passes at most EXACT_SUBSET chunks or EXACT_SHARE of the space's rows (the planner's
        row estimate), counted up to that bound on the row indexes. An HNSW scan under a filter of a small share
        finds few of its neighbours even with iterative scans (recall@10 0.56 for a 1% filter of 1M rows, where an
        exact scan of its 10k rows takes ~40 ms); past the share, the graph (0.95 at 100k for a 10% filter, 8 ms
        against 35 ms exact)."""
        if self.EXACT_SUBSET <= 0:
            return False
        rows = conn.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", (table,)).fetchone()
        bound = max(self.EXACT_SUBSET, min(self.EXACT_MAX, int(self.EXACT_SHARE * max(0.0, rows[0] if rows else 0))))
        n = conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM chunks c JOIN documents d ON d.doc_id = c.doc_id"
                         f" WHERE {where} LIMIT %s) few", [*params, bound + 1]).fetchone()[0]
        return bool(n <= bound)

    def lexical_search(self, query: str, k: int, filters: SearchFilters | None = None) -> list[tuple[int, float]]:
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        f = sch.filter_sql(filters)
        rows = self._rows(
            "SELECT c.id, ts_rank(c.tsv, q, 1) AS s FROM chunks c JOIN documents d ON d.doc_id = c.doc_id,"
            f" to_tsquery('english', %s) q WHERE c.tsv @@ q AND {f.where} ORDER BY s DESC, c.id LIMIT %s",
            [" | ".join(terms), *f.params, int(k)])
        return [(int(r[0]), float(r[1])) for r in rows]

    def lexical_pages(self, query: str, k: int,
                      filters: SearchFilters | None = None) -> list[tuple[str, int, float]]:
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        f = sch.filter_sql(filters, page_col="p.number", kind_col=None, doc_col="p.doc_id")
        rows = self._rows(
            "SELECT p.doc_id, p.number, ts_rank(p.tsv, q, 1) AS s FROM pages p JOIN documents d ON d.doc_id ="
            f" p.doc_id, to_tsquery('english', %s) q WHERE p.tsv @@ q AND {f.where} ORDER BY s DESC, p.doc_id,"
            " p.number LIMIT %s", [" | ".join(terms), *f.params, int(k)])
        return [(str(r[0]), int(r[1]), float(r[2])) for r in rows]

    # -- upkeep -----------------------------------------------------------------------------------------
    def before_write(self) -> None:
        """Nothing to prepare: the HNSW indexes are updated by the commit itself."""

    def after_write(self, ids: list[int], vectors: VectorRows, dropped: list[int]) -> None:
        """Nothing to update: there are no caches outside the database."""

    def flush(self) -> None:
        """Nothing to save: every commit is durable in the database."""

    def check(self) -> list[Any]:
        from retrieval.store.pg_check import check_postgres

        return check_postgres(self)
