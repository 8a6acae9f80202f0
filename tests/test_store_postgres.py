"""PostgreSQL-only behaviour: filtered HNSW search keeps k hits (iterative scan), schema versioning, the writer
lock across processes, crash safety under SIGKILL, and a streaming read replica."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.types import BBox, Chunk, Page, ParsedDocument
from retrieval.store.postgres import PostgresStore
from retrieval.types import SearchFilters

DIM = 32


def _doc(n: int, name: str) -> ParsedDocument:
    return ParsedDocument(path=f"/synthetic/{name}", sha256=f"{n:024x}" + "0" * 40, kind="text",
                          pages=tuple(Page(p, 600, 800) for p in range(1, 11)))


def _fill(store: PostgresStore, near: np.ndarray, rng: np.random.Generator) -> None:
    """Doc 'crowd': 6000 chunks right around `near`; doc 'needle': 40 chunks far from it, on pages 1-10."""
    for n, (name, count, centre) in enumerate([("crowd", 6000, near), ("needle", 40, -near)]):
        doc = _doc(n, name)
        chunks = [Chunk(doc.doc_id, 1 + i % 10, "text", f"{name} chunk {i}", BBox(0, 0, 1, 1)) for i in range(count)]
        vectors = centre + 0.05 * rng.standard_normal((count, DIM)).astype(np.float32)
        with store.transaction():
            store.put_document(doc, name, 0, chunks, [{} for _ in chunks], {"text": (list(range(count)), vectors)})
            store.put_file(doc.path, doc.doc_id, doc.sha256, 0, 0.0, "ingested")


@pytest.fixture
def filled(pg_dsn: str, tmp_path: Path) -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(7)
    near = rng.standard_normal(DIM).astype(np.float32)
    store = PostgresStore(pg_dsn, writable=True, assets_dir=tmp_path / "assets")
    try:
        _fill(store, near, rng)
        with store._conn() as conn:
            conn.execute("ANALYZE")
    finally:
        store.close()
    return pg_dsn, near


def test_a_selective_filter_still_returns_k_hits(filled: tuple[str, np.ndarray], tmp_path: Path):
    """The query sits in the crowd, the filter keeps only the needle: the first ef_search graph candidates all
    fail the filter, so without an iterative scan HNSW returns (almost) nothing."""
    dsn, near = filled
    needle = SearchFilters(docs=("needle",))
    with_scan = PostgresStore(dsn, assets_dir=tmp_path / "a")
    without = PostgresStore(dsn, assets_dir=tmp_path / "a", iterative_scan=False)
    try:
        with with_scan._conn() as conn:
            plan = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN SELECT v.id FROM vec_text v JOIN chunks c ON c.id = v.id JOIN documents d ON d.doc_id ="
                " c.doc_id WHERE d.name = 'needle' ORDER BY v.embedding <#> %s LIMIT 10", (near,)))
        assert "vec_text_hnsw" in plan, plan  # the filtered query really runs on the HNSW index
        hits = with_scan.vector_search("text", near, 10, needle)
        assert len(hits) == 10
        stored = with_scan.get_chunks(hits)
        assert {s.doc_name for s in stored.values()} == {"needle"}
        pages = with_scan.vector_search("text", near, 10, SearchFilters(docs=("needle",), pages=(3, 4)))
        assert len(pages) == 8 and {s.chunk.page for s in with_scan.get_chunks(pages).values()} == {3, 4}
        assert len(without.vector_search("text", near, 10, needle)) < 10  # what iterative scan fixes
        assert len(with_scan.vector_search("text", near, 10)) == 10  # no filter: the crowd
    finally:
        with_scan.close()
        without.close()


def test_schema_is_versioned_and_a_reader_needs_a_kb(pg_dsn: str, tmp_path: Path):
    from retrieval.errors import KBError
    from retrieval.store import pg_schema

    with pytest.raises(KBError, match="no knowledge base"):
        PostgresStore(pg_dsn, assets_dir=tmp_path)
    PostgresStore(pg_dsn, writable=True, assets_dir=tmp_path).close()
    store = PostgresStore(pg_dsn, writable=True, assets_dir=tmp_path)  # a second migrate is a no-op
    try:
        with store._conn() as conn:
            assert pg_schema.schema_version(conn) == pg_schema.SCHEMA_VERSION
            assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(pg_schema.MIGRATIONS)
    finally:
        store.close()
