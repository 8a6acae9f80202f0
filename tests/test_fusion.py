"""Fusion arithmetic against hand computations: weighted RRF, MMR, chunk → page aggregation."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.fusion import first_by, mmr, rrf, to_pages


def test_rrf_matches_hand_computation() -> None:
    fused = rrf({"dense": ["a", "b", "c"], "bm25": ["b", "d"]}, k=60)
    scores = {f.key: f.score for f in fused}
    assert scores["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert scores["a"] == pytest.approx(1 / 61)
    assert scores["d"] == pytest.approx(1 / 62)
    assert [f.key for f in fused] == ["b", "a", "d", "c"]
    assert fused[0].ranks == {"dense": 2, "bm25": 1}


def test_rrf_weights_and_zero_weight() -> None:
    rankings = {"dense": ["a", "b"], "bm25": ["b", "a"]}
    assert rrf(rankings, {"dense": 2.0, "bm25": 1.0})[0].key == "a"
    assert rrf(rankings, {"dense": 1.0, "bm25": 2.0})[0].key == "b"
    only_bm25 = rrf(rankings, {"dense": 0.0})
    assert [f.key for f in only_bm25] == ["b", "a"]
    assert only_bm25[0].ranks == {"dense": 2, "bm25": 1}  # still reported as found


def test_rrf_ignores_duplicates_and_breaks_ties_by_best_rank() -> None:
    fused = rrf({"x": ["a", "a", "b"], "y": ["c"]})
    assert fused[0].ranks == {"x": 1}
    scores = {f.key: f.score for f in fused}
    assert scores["a"] == pytest.approx(1 / 61)
    assert scores["a"] == scores["c"] and [f.key for f in fused][:2] == ["a", "c"]
    assert rrf({}) == []


def test_mmr_lambda_one_is_relevance_order_and_lower_lambda_diversifies() -> None:
    vectors = np.array([[1, 0], [1, 0.01], [0, 1]], dtype=np.float32)
    relevance = [0.9, 0.85, 0.5]
    assert mmr(relevance, vectors, 3, lambda_=1.0) == [0, 1, 2]
    assert mmr(relevance, vectors, 2, lambda_=0.5) == [0, 2]  # the near-duplicate of #0 waits
    assert mmr([], np.zeros((0, 2)), 3) == []
    assert mmr(relevance, vectors, 10, lambda_=0.3) == [0, 2, 1]


def test_pages_rank_where_their_best_chunk_ranks() -> None:
    page_of = {1: ("d", 3), 2: ("d", 3), 3: ("e", 1), 4: ("d", 4)}
    assert to_pages([2, 3, 1, 4, 99], page_of) == [("d", 3), ("e", 1), ("d", 4)]
    assert first_by([1, 2, 3, 4], {1: "d", 2: "d", 3: "e", 4: "d"}) == [1, 3]
