"""Search latency at 10k / 100k / 1M synthetic chunks (384-d), exact vs HNSW, with HNSW recall@10 vs exact.

    .venv/bin/python bench/search_latency.py                          # index: 10k, 100k, 1M; pipeline: 10k, 100k
    .venv/bin/python bench/search_latency.py --sizes 10000 100000 --pipeline-sizes 100000 --json

`index` times `VectorIndex.search` alone (one query at a time, as a user's search runs), for the exact index
(IndexFlatIP) and the HNSW graph the KB switches to above its threshold. `pipeline` times the whole
`Searcher.search` (query embedding by a hash embedder, FAISS, FTS5 BM25 over synthetic text, RRF, catalog
fetch of the hits) on a KB of synthetic chunks. Vectors are L2-normalised and clustered like embeddings
(`--data uniform` gives HNSW's worst case). Each size has a build time guard; a size over it is reported, not
hung on. Threads are capped (`--threads`, default 2) to match the target machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def synthetic(n: int, d: int, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), np.float32)
    centres = rng.standard_normal((max(16, n // 200), d)).astype(np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        if kind == "uniform":
            block = rng.standard_normal((m, d)).astype(np.float32)
        else:
            block = centres[rng.integers(0, len(centres), m)] + 0.5 * rng.standard_normal((m, d)).astype(np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "mean_ms": round(float(ms.mean()), 3)}


def timed_queries(index: Any, queries: np.ndarray, k: int) -> tuple[list[float], np.ndarray]:
    times, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        _, ids = index.search(q[None, :], k)
        times.append(time.perf_counter() - t0)
        found.append(ids[0])
    return times, np.stack(found)


def bench_index(n: int, d: int, args: argparse.Namespace) -> dict[str, Any]:
    from retrieval.vectors import VectorIndex

    both = synthetic(n + args.queries, d, args.data, seed=n)  # queries from the same distribution, held out
    vectors, queries = both[:n], both[n:]
    ids = np.arange(1, n + 1, dtype=np.int64)
    row: dict[str, Any] = {"n": n}
    exact = VectorIndex(d, approx_threshold=n + 1)
    t0 = time.perf_counter()
    exact.add(ids, vectors)
    row["exact_build_s"] = round(time.perf_counter() - t0, 2)
    times, truth = timed_queries(exact, queries, args.k)
    row["exact"] = percentiles(times)
    approx = VectorIndex(d, approx_threshold=1)
    t0 = time.perf_counter()
    for start in range(0, n, 20_000):
        approx.add(ids[start : start + 20_000], vectors[start : start + 20_000])
        if time.perf_counter() - t0 > args.guard_s:
            row["hnsw"] = f"build passed the {args.guard_s:.0f} s guard at {start + 20_000} vectors"
            return row
    row["hnsw_build_s"] = round(time.perf_counter() - t0, 2)
    times, found = timed_queries(approx, queries, args.k)
    row["hnsw"] = percentiles(times)
    row["hnsw_recall@10"] = round(float(np.mean([len(set(f) & set(t)) / args.k for f, t in zip(found, truth,
                                                                                            strict=True)])), 4)
    return row


def bench_real(kb_dir: str, args: argparse.Namespace) -> dict[str, Any]:
    """HNSW recall@10 vs exact on a real KB's text vectors (queries: stored vectors, lightly perturbed)."""
    from retrieval.store import open_store
    from retrieval.vectors import VectorIndex, normalise

    store = open_store(kb_dir)
    ids = store.vector_ids("text")
    d = int(json.loads(store.get_meta("manifest") or "{}")["spaces"]["text"]["dimension"])
    vectors = store.load_vectors("text", ids.tolist(), d)
    rng = np.random.default_rng(0)
    picks = rng.choice(len(ids), size=min(args.queries, len(ids)), replace=False)
    queries = normalise(vectors[picks] + 0.05 * rng.standard_normal((len(picks), d)).astype(np.float32))
    exact, approx = VectorIndex(d, approx_threshold=len(ids) + 1), VectorIndex(d, approx_threshold=1)
    exact.add(ids, vectors)
    approx.add(ids, vectors)
    _, truth = timed_queries(exact, queries, args.k)
    times, found = timed_queries(approx, queries, args.k)
    recall = float(np.mean([len(set(f) & set(t)) / args.k for f, t in zip(found, truth, strict=True)]))
    return {"kb": kb_dir, "n": len(ids), "dim": d, "hnsw_recall@10": round(recall, 4), **percentiles(times)}


def bench_pipeline(n: int, d: int, args: argparse.Namespace) -> dict[str, Any]:
    from retrieval.fakes import HashEmbedder
    from retrieval.kb import KnowledgeBase
    from retrieval.search import Searcher
    from retrieval.settings import KBSettings

    rng = np.random.default_rng(7)
    vocab = [f"w{i}" for i in range(20_000)]
    embedder = HashEmbedder(d)
    with tempfile.TemporaryDirectory() as tmp:
        settings = KBSettings(text_model="fake", image_model="none", tag_images=False)
        kb = KnowledgeBase.open(Path(tmp) / "kb", settings, writable=True, factory=lambda role, spec: embedder)
        t0 = time.perf_counter()
        _fill(kb, n, d, rng, vocab)
        searcher = Searcher(kb)
        searcher.search("warm up", top_k=10)  # builds the FAISS index from the catalog
        build = time.perf_counter() - t0
        queries = [" ".join(rng.choice(vocab[:5000], size=rng.integers(3, 8))) for _ in range(args.queries)]
        times, found = [], 0
        for q in queries:
            t0 = time.perf_counter()
            hits = searcher.search(q, top_k=10)
            times.append(time.perf_counter() - t0)
            found += len(hits)
        approximate = kb.index("text").approximate  # type: ignore[union-attr]
        kb.close()
    return {"n": n, "build_s": round(build, 1), "index": "hnsw" if approximate else "exact",
            "hits_per_query": round(found / len(queries), 1), **percentiles(times)}


def _fill(kb: Any, n: int, d: int, rng: np.random.Generator, vocab: list[str]) -> None:
    from ingest.types import BBox, Chunk, Page, ParsedDocument

    kb.register_space("text", "fake", d)
    per_doc = 500
    vectors = synthetic(n, d, "clustered", seed=n + 2)
    for start in range(0, n, per_doc):
        m = min(per_doc, n - start)
        sha = f"{start:024x}" + "0" * 40  # distinct doc ids (the first 24 hex digits)
        doc = ParsedDocument(path=f"/synthetic/{start}", sha256=sha, kind="text",
                             pages=(Page(1, 600, 800),))
        chunks = [Chunk(sha[:24], 1, "text", " ".join(rng.choice(vocab, size=60)), BBox(0, 0, 1, 1))
                  for _ in range(m)]
        with kb.store.transaction():
            kb.store.put_document(doc, f"doc{start}", 0, chunks, [{} for _ in chunks],
                                  {"text": (list(range(m)), vectors[start : start + m])})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--pipeline-sizes", type=int, nargs="*", default=[10_000, 100_000])
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", choices=("clustered", "uniform"), default="clustered")
    p.add_argument("--guard-s", type=float, default=1200.0, help="give up an HNSW build after this many seconds")
    p.add_argument("--kb", action="append", default=[], metavar="DIR",
                   help="also measure HNSW recall on this KB's real text vectors (repeatable)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    result: dict[str, Any] = {"dim": args.dim, "threads": args.threads, "data": args.data,
                              "load_avg": os.getloadavg(), "index": [], "pipeline": []}
    for n in args.sizes:
        print(f"index: {n} vectors ...", file=sys.stderr)
        result["index"].append(bench_index(n, args.dim, args))
        print(json.dumps(result["index"][-1]), file=sys.stderr)
    for n in args.pipeline_sizes:
        print(f"pipeline: {n} chunks ...", file=sys.stderr)
        result["pipeline"].append(bench_pipeline(n, args.dim, args))
        print(json.dumps(result["pipeline"][-1]), file=sys.stderr)
    result["real"] = [bench_real(kb, args) for kb in args.kb]
    print(json.dumps(result, indent=2) if args.json else _table(result))
    return 0


def _table(result: dict[str, Any]) -> str:
    lines = [f"{result['dim']}-d, {result['threads']} threads, {result['data']} data, load {result['load_avg']}",
             "| n | exact p50 | exact p95 | hnsw p50 | hnsw p95 | hnsw recall@10 | hnsw build s |", "|---" * 7 + "|"]
    for r in result["index"]:
        h = r.get("hnsw")
        hp = (f"{h['p50_ms']} | {h['p95_ms']}" if isinstance(h, dict) else f"{h} | -")
        lines.append(f"| {r['n']} | {r['exact']['p50_ms']} | {r['exact']['p95_ms']} | {hp} | "
                     f"{r.get('hnsw_recall@10', '-')} | {r.get('hnsw_build_s', '-')} |")
    lines += ["", "| pipeline n | index | p50 ms | p95 ms | build s |", "|---" * 5 + "|"]
    lines += [f"| {r['n']} | {r['index']} | {r['p50_ms']} | {r['p95_ms']} | {r['build_s']} |"
              for r in result["pipeline"]]
    lines += [f"real vectors {r['kb']}: n={r['n']} ({r['dim']}-d), HNSW recall@10 {r['hnsw_recall@10']}, "
              f"p50 {r['p50_ms']} ms" for r in result["real"]]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
