"""SciFact (BEIR test split): retrieval quality and corpus throughput of text embedders, side by side.

    .venv/bin/python scripts/scifact_embedders.py                       # minilm-int8 vs minilm
    .venv/bin/python scripts/scifact_embedders.py --specs minilm-int8 --limit 500 --json

Exact search (faiss.IndexFlatIP over L2-normalised vectors); documents are "title + ' ' + text".
Progress goes to stderr, the table (or --json) to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "scifact"


def load_scifact(folder: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    corpus = {}
    for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        corpus[row["_id"]] = (row.get("title", "") + " " + row["text"]).strip()
    queries = {}
    for line in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        queries[row["_id"]] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(score)
    return corpus, {q: t for q, t in queries.items() if q in qrels}, qrels


def ndcg_at_k(ranked: list[str], rels: dict[str, int], k: int = 10) -> float:
    """Linear gain (as pytrec_eval/BEIR): DCG = sum rel_i / log2(i + 1), i from 1."""
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: list[str], rels: dict[str, int], k: int = 100) -> float:
    relevant = {d for d, r in rels.items() if r > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at_k(ranked: list[str], rels: dict[str, int], k: int = 10) -> float:
    return next((1.0 / (i + 1) for i, d in enumerate(ranked[:k]) if rels.get(d, 0) > 0), 0.0)


def search(doc_vectors: np.ndarray, query_vectors: np.ndarray, k: int) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatIP(doc_vectors.shape[1])
    index.add(np.ascontiguousarray(doc_vectors, np.float32))
    _, ids = index.search(np.ascontiguousarray(query_vectors, np.float32), k)
    return ids


def evaluate(spec: str, corpus: dict[str, str], queries: dict[str, str], qrels: dict, log) -> dict:  # type: ignore[no-untyped-def,type-arg]
    from retrieval.embedders import build_text_embedder

    started = time.perf_counter()
    embedder = build_text_embedder(spec)
    load_s = time.perf_counter() - started
    doc_ids, docs = list(corpus), list(corpus.values())
    tokens = sum(min(embedder.count_tokens(d), embedder.max_tokens) for d in docs)
    log(f"{spec}: loaded in {load_s:.2f}s; embedding {len(docs)} docs ({tokens} tokens after truncation)")
    started, cpu_started = time.perf_counter(), time.process_time()
    doc_vectors = embedder.embed(docs)
    corpus_s, corpus_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
    qids = list(queries)
    started = time.perf_counter()
    query_vectors = embedder.embed([queries[q] for q in qids])
    query_s = time.perf_counter() - started
    hits = search(doc_vectors, query_vectors, k=min(100, len(doc_ids)))
    ranked = {q: [doc_ids[i] for i in row if i >= 0] for q, row in zip(qids, hits, strict=True)}
    result = {
        "spec": spec,
        "name": embedder.name,
        "dimension": embedder.dimension,
        "ndcg@10": float(np.mean([ndcg_at_k(ranked[q], qrels[q]) for q in qids])),
        "recall@100": float(np.mean([recall_at_k(ranked[q], qrels[q]) for q in qids])),
        "mrr@10": float(np.mean([mrr_at_k(ranked[q], qrels[q]) for q in qids])),
        "load_s": load_s,
        "corpus_s": corpus_s,
        "docs_per_s": len(docs) / corpus_s,
        "tokens_per_s": tokens / corpus_s,
        "corpus_cpu_s": corpus_cpu_s,  # CPU seconds over all threads: fairer than wall time on a busy machine
        "tokens_per_cpu_s": tokens / corpus_cpu_s,
        "queries_per_s": len(qids) / query_s,
    }
    log(f"{spec}: {json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()})}")
    return {**result, "_doc_vectors": doc_vectors}


def print_table(results: list[dict], n_docs: int, n_queries: int) -> None:  # type: ignore[type-arg]
    print(f"SciFact test: {n_docs} docs, {n_queries} queries, exact inner-product search")
    header = (f"{'embedder':<14}{'nDCG@10':>9}{'R@100':>8}{'MRR@10':>8}{'docs/s':>9}{'tok/s':>9}{'q/s':>8}"
              f"{'tok/cpu-s':>11}{'load s':>8}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['spec']:<14}{r['ndcg@10']:>9.4f}{r['recall@100']:>8.4f}{r['mrr@10']:>8.4f}"
            f"{r['docs_per_s']:>9.1f}{r['tokens_per_s']:>9.0f}{r['queries_per_s']:>8.1f}"
            f"{r['tokens_per_cpu_s']:>11.0f}{r['load_s']:>8.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="BEIR scifact folder")
    parser.add_argument("--specs", nargs="+", default=["minilm-int8", "minilm"], help="text embedder specs")
    parser.add_argument("--limit", type=int, default=0, help="first N docs only (quick runs; scores drop)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if not (args.data / "corpus.jsonl").exists():
        print(f"no SciFact at {args.data}: pass --data FOLDER", file=sys.stderr)
        return 2
    corpus, queries, qrels = load_scifact(args.data)
    if args.limit:
        corpus = dict(list(corpus.items())[: args.limit])

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    results = [evaluate(spec, corpus, queries, qrels, log) for spec in args.specs]
    if len(results) >= 2:  # how far apart the first two embedders put the same documents
        a, b = results[0]["_doc_vectors"], results[1]["_doc_vectors"]
        if a.shape == b.shape:
            cos = (a * b).sum(axis=1)
            log(
                f"doc-vector cosine {results[0]['spec']} vs {results[1]['spec']}: mean {cos.mean():.4f} "
                f"min {cos.min():.4f}"
            )
    for r in results:
        r.pop("_doc_vectors")
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results, len(corpus), len(queries))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
