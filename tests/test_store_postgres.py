"""PostgreSQL-only behaviour: filtered HNSW search keeps k hits (iterative scan), schema versioning, the writer
lock across processes, crash safety under SIGKILL, and a streaming read replica."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.types import BBox, Chunk, Page, ParsedDocument
from retrieval.settings import KBSettings
from retrieval.store.postgres import PostgresStore
from retrieval.types import SearchFilters

DIM = 32
FAKE = ["--text-model", "fake", "--image-model", "fake"]


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
    exact = PostgresStore(dsn, assets_dir=tmp_path / "a", iterative_scan=False)
    with_scan.EXACT_SUBSET = without.EXACT_SUBSET = 0  # the graph, not the exact path small filters take
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
        # a filter this selective (40 chunks) is searched exactly by default: the true top 10, graph or not
        vectors = exact.load_vectors("text", exact.chunk_ids(with_scan.documents()[1].doc_id), DIM)
        ids = exact.chunk_ids(with_scan.documents()[1].doc_id)
        truth = [ids[j] for j in np.argsort(-(vectors @ (near / np.linalg.norm(near))), kind="stable")[:10]]
        assert exact.vector_search("text", near, 10, needle) == truth
        # past EXACT_SUBSET a filter of a small share of the rows (the planner's estimate) is still exact: with
        # the graph alone (no iterative scan) this filter finds < 10 hits, as above
        exact.EXACT_SUBSET = 5
        exact.EXACT_SHARE = 0.01  # 60 of the 6040 rows: the needle's 40 pass
        assert exact.vector_search("text", near, 10, needle) == truth
        exact.EXACT_SHARE = 0.005  # 30 rows: the needle's 40 do not, so the graph it is
        assert len(exact.vector_search("text", near, 10, needle)) < 10
    finally:
        with_scan.close()
        without.close()
        exact.close()


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


# -- crash safety and replicas: real `citeline` subprocesses ----------------------------------------------------
def _notes(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"note{i:03d}.md"
        path.write_text(f"# Note {i} of {folder.name}\n\nThe sensor number {i} reads {i * 7} degrees.\n\n"
                        f"Section {i} ends here.\n")
        paths.append(path)
    return paths


def _cli(args: list[str], home: Path, **env: str) -> Any:
    import os
    import subprocess
    import sys

    full = {**os.environ, "CITELINE_HOME": str(home), **env}
    return subprocess.Popen([sys.executable, "-m", "assistant.cli", *args], env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=str(Path(__file__).resolve().parents[1]))


def _fingerprint(dsn: str, home: Path) -> dict[str, Any]:
    from retrieval.kb import KnowledgeBase

    with KnowledgeBase.open(dsn, KBSettings(text_model="fake", image_model="fake", tag_images=False),
                            assets_dir=home / "assets") as kb:
        store = kb.store
        docs = sorted((d.name, d.pages, d.chunks, d.paths) for d in store.documents())
        chunks = store.get_chunks(store.chunk_ids())
        texts = sorted((c.doc_name, c.chunk.page, c.chunk.text) for c in chunks.values())
        return {"documents": docs, "chunks": texts, "vectors": len(store.vector_ids("text")),
                "files": [(f["path"], f["status"]) for f in store.files()], "problems": kb.check()}


@pytest.mark.parametrize("fault", ["before_catalog_commit:5",
                                   pytest.param("between_documents:9", marks=pytest.mark.slow),
                                   pytest.param("sigkill", marks=pytest.mark.slow)])
def test_a_killed_writer_leaves_whole_documents_and_a_rerun_completes(pg_server: Any, tmp_path: Path, fault: str):
    import signal
    import time

    from tests import pg_fixture

    folder = tmp_path / "docs"
    _notes(folder, 40)
    dsn = pg_fixture.create_database(pg_server, "crash_" + fault.split(":")[0])
    clean = pg_fixture.create_database(pg_server, "crash_clean_" + fault.split(":")[0])
    args = ["ingest", str(folder), *FAKE, "--no-ocr", "--json"]
    env = {} if fault == "sigkill" else {"CITELINE_FAULT": fault}
    proc = _cli([*args, "--kb", dsn], tmp_path / "home", **env)
    if fault == "sigkill":  # a real SIGKILL once some documents are committed
        deadline = time.monotonic() + 120
        while _count(dsn) < 5 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=180)
    assert proc.returncode != 0
    half = _fingerprint(dsn, tmp_path / "home")
    assert 0 < len(half["documents"]) < 40 and half["problems"] == []
    assert {len(d[3]) for d in half["documents"]} == {1}  # every committed document has its file row
    for kb in (dsn, clean):
        done = _cli([*args, "--kb", kb], tmp_path / "home")
        out, err = done.communicate(timeout=300)
        assert done.returncode == 0, err
    assert _fingerprint(dsn, tmp_path / "home") == _fingerprint(clean, tmp_path / "home")


def _count(dsn: str) -> int:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM citeline.documents").fetchone()[0])
    except psycopg.Error:
        return 0


@pytest.mark.slow
def test_a_streaming_replica_serves_search_while_the_primary_ingests(pg_server: Any, tmp_path: Path):
    import time

    from retrieval.kb import KnowledgeBase
    from retrieval.search import Searcher
    from tests import pg_fixture

    dsn = pg_fixture.create_database(pg_server, "replicated")
    folder = tmp_path / "docs"
    _notes(folder / "first", 5)
    home = tmp_path / "home"
    first = _cli(["ingest", str(folder / "first"), "--kb", dsn, *FAKE, "--no-ocr", "--json"], home)
    assert first.wait(timeout=300) == 0
    replica = pg_fixture.start_replica(pg_server)
    try:
        rdsn = replica.dsn("replicated")
        settings = KBSettings(text_model="fake", image_model="fake", tag_images=False)
        with KnowledgeBase.open(rdsn, settings, assets_dir=home / "assets") as kb, \
                KnowledgeBase.open(dsn, settings, assets_dir=home / "assets") as primary:
            searcher, on_primary = Searcher(kb), Searcher(primary)
            _notes(folder / "more", 30)
            writer = _cli(["ingest", str(folder / "more"), "--kb", dsn, *FAKE, "--no-ocr", "--json"], home)
            seen: list[int] = []
            while writer.poll() is None:
                hits = searcher.search("sensor reads degrees", top_k=5)
                assert len(hits) == 5 and len(on_primary.search("sensor reads degrees", top_k=5)) == 5
                seen.append(kb.store.counts()["documents"])
                time.sleep(0.2)
            assert writer.returncode == 0
            deadline = time.monotonic() + 30  # replication lag, bounded
            while kb.store.counts()["documents"] < 35 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert kb.store.counts()["documents"] == 35
            assert seen == sorted(seen) and seen[0] >= 5  # the replica followed the primary's commits
            with pytest.raises(Exception, match="read-only|recovery"):
                KnowledgeBase.open(rdsn, settings, writable=True, assets_dir=home / "assets")
    finally:
        pg_fixture.remove(replica)


def test_a_kb_folder_can_name_a_server(pg_dsn: str, tmp_path: Path):
    import json

    from retrieval.kb import KnowledgeBase

    folder = tmp_path / "team-kb"
    folder.mkdir()
    (folder / "store.json").write_text(json.dumps({"dsn": pg_dsn}))
    settings = KBSettings(text_model="fake", image_model="fake", tag_images=False)
    with KnowledgeBase.open(folder, settings, writable=True) as kb:
        assert isinstance(kb.store, PostgresStore) and kb.assets_dir == folder / "assets"
        assert kb.status()["kb"] == pg_dsn  # no password in it to mask
    (folder / "store.json").write_text(json.dumps({"dsn": "/not/a/dsn"}))
    from retrieval.errors import KBError

    with pytest.raises(KBError, match="must name a PostgreSQL server"):
        KnowledgeBase.open(folder, settings)


def test_a_document_is_written_in_batches_with_ids_in_input_order(pg_dsn: str, tmp_path: Path):
    """put_document's multi-row inserts and packed COPY: chunk ids drawn in input order (across several INSERT
    batches), the tsvectors the server computes from text + image tags and the section, pages alike, and the
    stored vectors exactly the normalised float32 rows."""
    from retrieval.vectors import normalise

    store = PostgresStore(pg_dsn, writable=True, assets_dir=tmp_path / "assets")
    store.CHUNK_BATCH = 7  # several statements for one document
    try:
        doc = ParsedDocument(path="/synthetic/batched", sha256="b" * 64, kind="pdf",
                             pages=(Page(1, 612.5, 792), Page(2, 600, 800, ocr=True, section="Results")))
        chunks = [Chunk(doc.doc_id, 1 + i % 2, "figure" if i % 5 == 0 else "text", f"running studies {i}",
                        BBox(0, 0, 1, 1) if i % 3 else None, "Methods" if i % 2 else "", i % 4 == 0,
                        f"fig/{i}.png" if i % 5 == 0 else None, i) for i in range(23)]
        meta = [{"tags": "bar chart, revenue"} if i % 5 == 0 else ({"tags": ""} if i % 7 == 0 else {})
                for i in range(23)]
        vectors = np.random.default_rng(3).standard_normal((23, DIM)).astype(np.float32)
        with store.transaction():
            ids = store.put_document(doc, "batched", 0, chunks, meta, {"text": (list(range(0, 23, 2)),
                                                                                vectors[::2])})
        assert ids == list(range(ids[0], ids[0] + 23))
        with store._conn() as conn:
            rows = conn.execute(
                "SELECT id, chunk_id, page, kind, text, bbox, section, ocr, figure_path, tokens, meta,"
                " tsv = to_tsvector('english', text || coalesce(E'\\n' || (meta::jsonb->>'tags'), ''))"
                " || to_tsvector('english', coalesce(section, '')) FROM chunks ORDER BY id").fetchall()
            pages = conn.execute("SELECT number, width, height, ocr, section, tsv = to_tsvector('english', text)"
                                 " FROM pages ORDER BY number").fetchall()
        assert [r[0] for r in rows] == ids and [r[1] for r in rows] == [c.chunk_id for c in chunks]
        assert [r[2:10] for r in rows] == [
            (c.page, c.kind, c.text, json.dumps(c.bbox.as_list()) if c.bbox else None, c.section, int(c.ocr),
             c.figure_path, c.tokens) for c in chunks]
        assert [json.loads(r[10]) for r in rows] == meta and all(r[11] for r in rows)
        assert pages == [(1, 612.5, 792.0, 0, "", True), (2, 600.0, 800.0, 1, "Results", True)]
        stored = store.load_vectors("text", ids[::2], DIM)
        assert np.array_equal(stored, normalise(vectors[::2]))
        assert store.vector_ids("text").tolist() == ids[::2]
    finally:
        store.close()


def test_the_packed_vector_copy_stream_is_what_write_row_sends():
    """`copy_vectors_binary` packs, with numpy, the bytes psycopg's binary COPY `write_row((id, vector))` writes
    with pgvector's dumper (no server needed)."""
    pytest.importorskip("pgvector.psycopg")
    from pgvector.psycopg.vector import VectorBinaryDumper
    from psycopg import adapt
    from psycopg._copy_base import _binary_signature, _binary_trailer, format_row_binary

    from retrieval.store.pg_rows import copy_vectors_binary

    dumper = type("VectorOid", (VectorBinaryDumper,), {"oid": 99999})  # as pgvector registers it, any oid
    tx = adapt.Transformer()
    tx.adapters.register_dumper("numpy.ndarray", dumper)
    rng = np.random.default_rng(5)
    ids, matrix = np.array([1, 2**40, 7, 3], dtype=np.int64), rng.standard_normal((4, 5)).astype(np.float32)
    tx.set_dumper_types([20, 99999], 1)  # int8, vector; binary
    want = bytearray(_binary_signature)
    for i, row in zip(ids, matrix, strict=True):
        format_row_binary((int(i), row), tx, want)
    want += _binary_trailer
    assert b"".join(copy_vectors_binary(ids, matrix, block=3)) == bytes(want)
    with pytest.raises(ValueError):
        list(copy_vectors_binary(ids[:1], matrix))
