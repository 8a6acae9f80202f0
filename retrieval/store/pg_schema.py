"""The PostgreSQL backend's schema (versioned migrations, applied by Citeline), its filter SQL and its checks.

Everything lives in the `citeline` schema; `vector` comes from pgvector (≥ 0.8 for iterative index scans).
Each embedding space has its own table `vec_<space>(id, embedding vector(d))` with an HNSW index over inner
product (`vector_ip_ops`): vectors are L2-normalised on the way in, so inner product is cosine, as in the local
backend's FAISS `IndexFlatIP`/`IndexHNSWFlat`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from retrieval.types import SearchFilters

SCHEMA = "citeline"
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64

_V1 = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE writer(id INTEGER PRIMARY KEY DEFAULT 1, holder TEXT NOT NULL);
CREATE TABLE documents(
  doc_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, title TEXT, author TEXT,
  pages INTEGER NOT NULL, bytes BIGINT, outline TEXT, metadata TEXT, ingested_at DOUBLE PRECISION);
CREATE TABLE files(
  path TEXT PRIMARY KEY, doc_id TEXT, sha256 TEXT, size BIGINT, mtime DOUBLE PRECISION, status TEXT NOT NULL,
  error TEXT, updated_at DOUBLE PRECISION);
CREATE INDEX files_doc ON files(doc_id);
CREATE TABLE pages(
  doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE, number INTEGER NOT NULL,
  width DOUBLE PRECISION, height DOUBLE PRECISION, ocr INTEGER, thumbnail TEXT, section TEXT, text TEXT,
  tsv TSVECTOR NOT NULL, PRIMARY KEY(doc_id, number));
CREATE INDEX pages_tsv ON pages USING GIN(tsv);
CREATE TABLE chunks(
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, chunk_id TEXT UNIQUE NOT NULL,
  doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE, page INTEGER NOT NULL, kind TEXT NOT NULL,
  text TEXT NOT NULL, bbox TEXT, section TEXT, ocr INTEGER, figure_path TEXT, tokens INTEGER, meta TEXT,
  tsv TSVECTOR NOT NULL);
CREATE INDEX chunks_doc ON chunks(doc_id, page);
CREATE INDEX chunks_tsv ON chunks USING GIN(tsv);
CREATE TABLE spaces(space TEXT PRIMARY KEY, dimension INTEGER NOT NULL, tbl TEXT NOT NULL);
INSERT INTO meta(key, value) VALUES('generation', '0'), ('vectors_epoch', '0');
"""

MIGRATIONS: tuple[tuple[int, str], ...] = ((1, _V1),)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def migrate(conn: Any) -> int:
    """Create or bring the schema up to date, in one transaction, serialised across processes. Returns the
    version found before (0: a new KB)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('citeline-migrate'))")
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version("
                     "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        row = conn.execute(f"SELECT max(version) FROM {SCHEMA}.schema_version").fetchone()
        found = int(row[0] or 0)
        for version, ddl in MIGRATIONS:
            if version > found:
                conn.execute(ddl)
                conn.execute(f"INSERT INTO {SCHEMA}.schema_version(version) VALUES(%s)", (version,))
    return found


def schema_version(conn: Any) -> int:
    row = conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.schema_version",)).fetchone()
    if row[0] is None:
        return 0
    return int(conn.execute(f"SELECT coalesce(max(version), 0) FROM {SCHEMA}.schema_version").fetchone()[0])


def space_table(space: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", space):
        raise ValueError(f"invalid embedding space name {space!r}")
    return f"vec_{space}"


def create_space(conn: Any, space: str, dimension: int) -> str:
    table = space_table(space)
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table}(id BIGINT PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,"
                 f" embedding vector({int(dimension)}) NOT NULL)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_hnsw ON {table} USING hnsw (embedding vector_ip_ops)"
                 f" WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})")
    conn.execute("INSERT INTO spaces(space, dimension, tbl) VALUES(%s, %s, %s) ON CONFLICT (space) DO UPDATE"
                 " SET dimension = EXCLUDED.dimension", (space, int(dimension), table))
    return table


@dataclass(frozen=True)
class FilterSQL:
    """A WHERE fragment over `chunks c JOIN documents d` (or pages p) and its parameters."""

    where: str
    params: tuple[object, ...]


def glob_regex(glob: str) -> str:
    """SQLite GLOB (case-sensitive `*`, `?`, `[...]`) as a POSIX regular expression, anchored."""
    out, i = ["^"], 0
    while i < len(glob):
        ch = glob[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[" and glob.find("]", i + 2) > 0:
            end = glob.find("]", i + 2)
            body = glob[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body).replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out) + "$"


def filter_sql(filters: SearchFilters | None, page_col: str = "c.page", kind_col: str | None = "c.kind",
               doc_col: str = "c.doc_id") -> FilterSQL:
    """The same filters as the local backend's (`retrieval.lexical.filter_sql`), in PostgreSQL."""
    if filters is None:
        return FilterSQL("TRUE", ())
    parts: list[str] = []
    params: list[object] = []
    if filters.docs:
        parts.append("(d.name = ANY(%s) OR d.doc_id = ANY(%s))")
        params += [list(filters.docs), list(filters.docs)]
    if filters.file_types:
        parts.append("d.kind = ANY(%s)")
        params.append(list(filters.file_types))
    if filters.pages is not None:
        parts.append(f"{page_col} BETWEEN %s AND %s")
        params += [int(filters.pages[0]), int(filters.pages[1])]
    if filters.modalities and kind_col:
        parts.append(f"{kind_col} = ANY(%s)")
        params.append(list(filters.modalities))
    if filters.path_glob:
        parts.append(f"EXISTS (SELECT 1 FROM files fl WHERE fl.doc_id = {doc_col} AND fl.status = 'ingested'"
                     " AND (fl.path ~ %s OR d.name ~ %s))")
        params += [glob_regex(filters.path_glob)] * 2
    return FilterSQL(" AND ".join(parts) or "TRUE", tuple(params))


# (kind, what is wrong, a query counting it): the local check's, less what a tsvector column cannot get wrong
CHECKS = (
    ("orphan", "documents held by no ingested file", "SELECT COUNT(*) FROM documents WHERE doc_id NOT IN"
     " (SELECT doc_id FROM files WHERE status='ingested' AND doc_id IS NOT NULL)"),
    ("catalog", "ingested files whose document is missing", "SELECT COUNT(*) FROM files WHERE status='ingested'"
     " AND (doc_id IS NULL OR doc_id NOT IN (SELECT doc_id FROM documents))"),
    ("catalog", "documents whose page count differs from their page rows", "SELECT COUNT(*) FROM documents d"
     " WHERE d.pages != (SELECT COUNT(*) FROM pages p WHERE p.doc_id=d.doc_id)"),
)
