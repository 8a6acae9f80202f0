"""Combining rankings: weighted reciprocal rank fusion, MMR diversity, and chunk → page aggregation.

Everything here is pure (ids and numbers in, ids and numbers out) so it can be tested against hand
computations without a knowledge base.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from retrieval.vectors import normalise

K = TypeVar("K", bound=Hashable)

DEFAULT_RRF_K = 60


@dataclass(frozen=True)
class Fused(Generic[K]):
    key: K
    score: float
    ranks: dict[str, int] = field(default_factory=dict)  # retriever -> 1-based rank


def rrf(rankings: Mapping[str, Sequence[K]], weights: Mapping[str, float] | None = None,
        k: int = DEFAULT_RRF_K) -> list[Fused[K]]:
    """Weighted reciprocal rank fusion: score(d) = sum_r w_r / (k + rank_r(d)).

    `rankings[name]` is that retriever's ids best first (duplicates after the first are ignored). Ties are
    broken by the best single rank, then by first appearance, so the result is deterministic.
    """
    weights = weights or {}
    scores: dict[K, float] = {}
    ranks: dict[K, dict[str, int]] = {}
    for name, ranking in rankings.items():
        w = float(weights.get(name, 1.0))
        seen: set[K] = set()
        for position, key in enumerate(ranking, start=1):
            if key in seen:
                continue
            seen.add(key)
            ranks.setdefault(key, {})[name] = position
            scores[key] = scores.get(key, 0.0) + w / (k + position)
    order = sorted(scores, key=lambda key: (-scores[key], min(ranks[key].values())))
    return [Fused(key, scores[key], ranks[key]) for key in order]


def mmr(relevance: Sequence[float], vectors: np.ndarray, top_k: int, lambda_: float = 0.5) -> list[int]:
    """Maximal marginal relevance: positions into `relevance`, picking lambda*rel - (1-lambda)*max_sim_selected.

    `relevance` is rescaled to [0, 1] so it is commensurable with cosine similarity of the (normalised) rows.
    """
    n = len(relevance)
    if n == 0 or top_k <= 0:
        return []
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones(n)
    vecs = normalise(vectors, np.float64)
    sims = vecs @ vecs.T
    chosen: list[int] = []
    max_sim = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    for _ in range(min(top_k, n)):
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        value = lambda_ * rel - (1.0 - lambda_) * penalty
        value[~available] = -np.inf
        best = int(np.argmax(value))
        chosen.append(best)
        available[best] = False
        max_sim = np.maximum(max_sim, sims[best])
    return chosen


def to_pages(ranking: Sequence[K], page_of: Mapping[K, tuple[str, int]]) -> list[tuple[str, int]]:
    """A chunk ranking → a page ranking: each page at the rank of its best chunk (MaxP)."""
    out: list[tuple[str, int]] = []
    seen: set[tuple[str, int]] = set()
    for key in ranking:
        page = page_of.get(key)
        if page is not None and page not in seen:
            seen.add(page)
            out.append(page)
    return out


def first_by(ranking: Sequence[K], group_of: Mapping[K, Hashable]) -> list[K]:
    """Keep the first (best) item of each group, in order: e.g. one hit per document."""
    out: list[K] = []
    seen: set[Hashable] = set()
    for key in ranking:
        group = group_of.get(key, key)
        if group not in seen:
            seen.add(group)
            out.append(key)
    return out
