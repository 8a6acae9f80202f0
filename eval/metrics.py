"""Ranking metrics over a run ({query: ranked ids}) and qrels ({query: {id: grade}}), as BEIR/pytrec_eval define them.

nDCG@k uses linear gain (grade) and log2 discount, with the ideal DCG from the qrels; Recall@k is the share of
relevant ids (grade > 0) found in the top k; MRR is the reciprocal rank of the first relevant id (0 if none).
Queries without any relevant id are skipped, as pytrec_eval does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

CUTOFFS = (1, 5, 10, 100)
Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Sequence[str]]


def dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    ideal = dcg(sorted((g for g in relevant.values() if g > 0), reverse=True)[:k])
    if ideal <= 0:
        return 0.0
    return dcg([max(relevant.get(d, 0), 0) for d in _dedupe(ranked)[:k]]) / ideal


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int) -> float:
    wanted = {d for d, g in relevant.items() if g > 0}
    if not wanted:
        return 0.0
    return len(wanted.intersection(_dedupe(ranked)[:k])) / len(wanted)


def reciprocal_rank(ranked: Sequence[str], relevant: Mapping[str, int]) -> float:
    for i, d in enumerate(_dedupe(ranked), start=1):
        if relevant.get(d, 0) > 0:
            return 1.0 / i
    return 0.0


def per_query(ranked: Sequence[str], relevant: Mapping[str, int]) -> dict[str, float]:
    out = {"ndcg@10": ndcg_at_k(ranked, relevant, 10)}
    out.update({f"recall@{k}": recall_at_k(ranked, relevant, k) for k in CUTOFFS})
    out["mrr"] = reciprocal_rank(ranked, relevant)
    return out


def evaluate(run: Run, qrels: Qrels, queries: Sequence[str] | None = None) -> dict[str, float]:
    """Mean of each metric over the judged queries (a query missing from `run` scores 0)."""
    ids = [q for q in (queries if queries is not None else list(qrels))
           if any(g > 0 for g in qrels.get(q, {}).values())]
    names = ["ndcg@10", *(f"recall@{k}" for k in CUTOFFS), "mrr"]
    if not ids:
        return {**{n: 0.0 for n in names}, "queries": 0}
    rows = [per_query(run.get(q, ()), qrels[q]) for q in ids]
    means: dict[str, float] = {n: round(sum(r[n] for r in rows) / len(rows), 4) for n in names}
    means["queries"] = len(ids)
    return means


def _dedupe(ranked: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(ranked))
