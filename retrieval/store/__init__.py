"""Where a knowledge base's rows, vectors and full-text index live: one small protocol (`Store`), two backends.

    local     SQLite + FTS5 + FAISS caches in a folder (the embedded default; `retrieval.store.local`)
    postgres  PostgreSQL + pgvector HNSW + tsvector, by DSN (`retrieval.store.postgres`; `citeline[postgres]`)

`open_store(location, writable=...)` picks the backend from the location: a `postgresql://` DSN, or a folder.
"""

from __future__ import annotations

from retrieval.store.protocol import DocumentRow, Store, StoredChunk, is_dsn, kb_location, masked
from retrieval.store.registry import check_writable, open_store

__all__ = ["DocumentRow", "check_writable", "Store", "StoredChunk", "is_dsn", "kb_location", "masked", "open_store"]
