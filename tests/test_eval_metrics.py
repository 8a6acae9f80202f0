"""Ranking metrics against hand computations, the dataset loaders, and `citeline eval retrieval` end to end
on a tiny BEIR folder (fake embedder)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from eval.metrics import evaluate, ndcg_at_k, recall_at_k, reciprocal_rank


def test_ndcg_matches_hand_computation() -> None:
    rel = {"a": 1, "b": 2}
    ranked = ["x", "b", "a"]
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranked, rel, 10) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(["b", "a"], rel, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], rel, 10) == 0.0
    assert ndcg_at_k(["x", "b"], rel, 1) == 0.0
    assert ndcg_at_k(["a", "a", "b"], rel, 10) == ndcg_at_k(["a", "b"], rel, 10)  # duplicates count once


def test_recall_and_mrr() -> None:
    rel = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["c", "a", "x"], rel, 1) == 0.0
    assert recall_at_k(["c", "a", "x"], rel, 5) == 0.5
    assert recall_at_k(["b", "a"], rel, 2) == 1.0
    assert reciprocal_rank(["c", "x", "b"], rel) == pytest.approx(1 / 3)
    assert reciprocal_rank([], rel) == 0.0


def test_evaluate_averages_judged_queries_only() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    run = {"q1": ["a"], "q2": ["x", "b"]}
    out = evaluate(run, qrels)
    assert out["queries"] == 2
    assert out["mrr"] == pytest.approx((1 + 0.5) / 2)
    assert out["recall@1"] == pytest.approx(0.5)
    assert evaluate({}, qrels)["ndcg@10"] == 0.0


def test_loaders_read_the_shared_data(shared_data: Path) -> None:
    from eval.datasets import load_beir, load_coco, load_mmlongbench

    scifact = load_beir(shared_data / "scifact")
    assert len(scifact.queries) == 300
    mmlb = load_mmlongbench(shared_data / "mmlongbench-dev")
    assert mmlb.groups["Figure"] and mmlb.groups["Chart"]
    assert all("#p" in page for rel in mmlb.qrels.values() for page in rel)
    assert all(mmlb.query_doc[q].endswith(".pdf") for q in mmlb.queries)
    coco = load_coco(shared_data / "coco-mini")
    assert len(coco.queries) == 795 and all(len(r) == 1 for r in coco.qrels.values())


def _tiny_beir(root: Path) -> Path:
    corpus = [("d1", "Vitamin D", "Vitamin D deficiency weakens bones."),
              ("d2", "Sleep", "Short sleep raises the risk of obesity."),
              ("d3", "Coffee", "Coffee drinkers live longer in cohort studies.")]
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("\n".join(json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in corpus))
    queries = [("q1", "vitamin d and bone"), ("q2", "sleep duration obesity"), ("q3", "coffee mortality")]
    (root / "queries.jsonl").write_text("\n".join(json.dumps({"_id": i, "text": t}) for i, t in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n")
    return root


def test_eval_retrieval_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main

    data = _tiny_beir(tmp_path / "beir")
    argv = ["eval", "retrieval", "--dataset", f"beir:{data}", "--json", "--text-model", "fake",
            "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["runs"]) == {"dense", "bm25", "fused"}
    for metrics in out["runs"].values():
        assert set(metrics) >= {"ndcg@10", "recall@1", "recall@5", "recall@10", "recall@100", "mrr"}
    assert out["runs"]["bm25"]["recall@1"] == 1.0
    assert main([a for a in argv if a != "--json"]) == 0  # the cached KB is reused; markdown report
    assert "| fused |" in capsys.readouterr().out
    assert main(["eval", "retrieval", "--dataset", "nope:/x"]) == 2


@pytest.mark.parametrize("option, message", [
    ("insist=maybe", "insist must be true or false"),
    ("bogus=1", "unknown answer option(s): bogus"),
])
def test_eval_qa_reports_a_bad_option_before_building_anything(tmp_path: Path, option: str, message: str):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    cache = tmp_path / "cache"
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "eval", "qa", "--dataset", f"mmlongbench:{tmp_path}",
                          "--cache-dir", str(cache), "--no-baseline", "--option", option],
                         capture_output=True, text=True, cwd=root, timeout=120)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert not cache.exists()  # no eval KB was built for a run that cannot start
