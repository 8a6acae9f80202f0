"""Retrieval evaluation: each retriever alone and the fused default pipeline, side by side, in one run.

    beir:PATH         corpus → one-page documents through the product's chunker/embedder/catalog; hits → corpus ids
    mmlongbench:PATH  the PDFs through the real ingest path; page-level search over all the documents (or, with
                      scope "document", within the question's own), hits → `<pdf>#p<N>`; also broken down by
                      evidence type (Pure-text, Layout, Table, Chart, Figure)
    coco:PATH         the photos ingested as images; captions search the gallery; hits → image file names

Built KBs are cached under `cache_dir/<kind>-<key>` (key: data path, text and image model) so reruns are fast.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.datasets import Dataset, beir_documents, load_beir, load_coco, load_mmlongbench, store_documents
from eval.metrics import evaluate
from retrieval.kb import KnowledgeBase
from retrieval.search import Searcher, SearchSettings
from retrieval.settings import KBSettings
from retrieval.types import Hit, SearchFilters

KINDS = ("beir", "mmlongbench", "coco")
ALONE = {"beir": ("dense", "bm25"), "mmlongbench": ("page_bm25", "bm25", "dense", "figures", "image"),
         "coco": ("figures", "dense", "bm25", "image")}


@dataclass
class EvalConfig:
    kind: str
    path: Path
    cache_dir: Path
    text_model: str = "minilm-q8"
    image_model: str = "tagger"
    rescore: str | None = None  # a re-scorer spec (e.g. "mpnet") adds a "fused+rescore" run
    weights: dict[str, float] = field(default_factory=dict)
    rrf_k: int = 60
    limit: int | None = None  # evaluate only the first N queries (smoke runs)
    scope: str = "corpus"  # mmlongbench: search all documents ("corpus") or only the question's ("document")
    rebuild: bool = False


def parse_dataset(spec: str) -> tuple[str, Path]:
    kind, sep, path = spec.partition(":")
    if not sep or kind not in KINDS:
        raise ValueError(f"--dataset must be KIND:PATH with KIND one of {', '.join(KINDS)}; got {spec!r}")
    return kind, Path(path).expanduser()


def run(config: EvalConfig, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    log = log or (lambda m: print(m, file=sys.stderr))
    dataset = _load(config.kind, config.path)
    t0 = time.perf_counter()
    kb = build_kb(config, log)
    log(f"KB ready at {kb.root} in {time.perf_counter() - t0:.1f} s")
    try:
        searcher = _searcher(kb, config)
        queries = list(dataset.queries)[: config.limit] if config.limit else list(dataset.queries)
        runs, timing = _all_runs(searcher, dataset, queries, config, log)
        result: dict[str, Any] = {"dataset": f"{config.kind}:{config.path}", "queries": len(queries),
                                  "text_model": config.text_model, "image_model": config.image_model,
                                  "scope": config.scope if config.kind == "mmlongbench" else None,
                                  "runs": {name: evaluate(r, dataset.qrels, queries) for name, r in runs.items()},
                                  "ms_per_query": timing}
        if dataset.groups:
            result["breakdown"] = {group: {name: evaluate(r, dataset.qrels, [q for q in qids if q in queries])
                                           for name, r in runs.items()}
                                   for group, qids in dataset.groups.items()}
        return result
    finally:
        kb.close()


def _load(kind: str, path: Path) -> Dataset:
    return {"beir": load_beir, "mmlongbench": load_mmlongbench, "coco": load_coco}[kind](path)


def _searcher(kb: KnowledgeBase, config: EvalConfig) -> Searcher:
    base = SearchSettings()
    settings = SearchSettings(weights={**base.weights, **config.weights},
                              page_weights={**base.page_weights, **config.weights}, rrf_k=config.rrf_k)
    rescorer = None
    if config.rescore:
        from retrieval.rescore import build_rescorer

        rescorer = build_rescorer(config.rescore)
    return Searcher(kb, settings, rescorer=rescorer)


def _run_names(searcher: Searcher, config: EvalConfig) -> list[tuple[str, dict[str, Any]]]:
    spaces = searcher.kb.spaces()
    names: list[tuple[str, dict[str, Any]]] = []
    for name in ALONE[config.kind]:
        if name == "image" and ("image" not in spaces or not _image_takes_text(searcher)):
            continue
        names.append((name, {"retrievers": (name,)}))
    names.append(("fused", {}))
    if config.rescore:
        names.append(("fused+rescore", {"rescore": True}))
    return names


def _image_takes_text(searcher: Searcher) -> bool:
    model = searcher.kb.models.image
    return bool(model is not None and getattr(model, "supports_text_queries", False))


def _all_runs(searcher: Searcher, dataset: Dataset, queries: Sequence[str], config: EvalConfig,
              log: Callable[[str], None]) -> tuple[dict[str, dict[str, list[str]]], dict[str, float]]:
    runs: dict[str, dict[str, list[str]]] = {}
    timing: dict[str, float] = {}
    for name, options in _run_names(searcher, config):
        t0 = time.perf_counter()
        runs[name] = {q: _ranked_ids(searcher, dataset, q, options, config.scope) for q in queries}
        timing[name] = round(1000 * (time.perf_counter() - t0) / max(1, len(queries)), 1)
        log(f"  {name}: {len(queries)} queries, {timing[name]} ms/query")
    return runs, timing


def _ranked_ids(searcher: Searcher, dataset: Dataset, qid: str, options: dict[str, Any],
                scope: str = "corpus") -> list[str]:
    text = dataset.queries[qid]
    if dataset.kind == "mmlongbench":
        filters = SearchFilters(docs=(dataset.query_doc[qid],)) if scope == "document" else None
        hits = searcher.search(text, top_k=100, filters=filters, level="page", **options)
        return [f"{h.doc_name}#p{h.page}" for h in hits]
    hits = searcher.search(text, top_k=150, **options)
    return _unique_docs(hits)[:100]


def _unique_docs(hits: Sequence[Hit]) -> list[str]:
    return list(dict.fromkeys(h.doc_name for h in hits))


# -- building (and caching) the evaluated KB ------------------------------------------------------------------
def build_kb(config: EvalConfig, log: Callable[[str], None]) -> KnowledgeBase:
    key = hashlib.sha256(f"{config.path.resolve()}|{config.text_model}|{config.image_model}".encode()).hexdigest()
    root = config.cache_dir / f"{config.kind}-{config.path.name}-{key[:12]}"
    done = root / "EVAL_COMPLETE"
    if config.rebuild or not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        log(f"building the {config.kind} KB at {root} (cached for later runs)")
        _build(config, root, log)
        done.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
    return KnowledgeBase.open(root, KBSettings(text_model=config.text_model, image_model=config.image_model))


def _build(config: EvalConfig, root: Path, log: Callable[[str], None]) -> None:
    settings = KBSettings(text_model=config.text_model, image_model=config.image_model)
    if config.kind == "beir":
        with KnowledgeBase.open(root, settings, writable=True) as kb:
            docs = list(beir_documents(config.path))
            store_documents(kb, docs, progress=lambda n, t: log(f"  {n}/{t} documents") if n % 1024 == 0 else None)
        return
    from retrieval.kb_writer import KBWriter

    folder = config.path / ("documents" if config.kind == "mmlongbench" else "images")
    with KnowledgeBase.open(root, settings, writable=True) as kb:
        report = KBWriter(kb).run([str(folder)])
    totals = report.totals
    log(f"  ingested {totals['ingested']} files ({totals['pages']} pages, {totals['chunks']} chunks, "
        f"{totals['figures']} figures), {totals['failed']} failed, in {totals['seconds']:.0f} s")


# -- the report -------------------------------------------------------------------------------------------------
METRICS = ("ndcg@10", "recall@1", "recall@5", "recall@10", "recall@100", "mrr")


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Retrieval evaluation: {result['dataset']}", "",
             f"{result['queries']} queries; text model `{result['text_model']}`, image model "
             f"`{result['image_model']}`.", "", *_table(result["runs"], result.get("ms_per_query", {}))]
    for group, runs in result.get("breakdown", {}).items():
        n = int(next(iter(runs.values()), {"queries": 0})["queries"])
        lines += ["", f"## {group} ({n} questions)", "", *_table(runs, {})]
    return "\n".join(lines) + "\n"


def _table(runs: dict[str, dict[str, float]], timing: dict[str, float]) -> list[str]:
    head = "| run | " + " | ".join(METRICS) + (" | ms/query |" if timing else " |")
    rule = "|---" * (len(METRICS) + 1 + bool(timing)) + "|"
    rows = [f"| {name} | " + " | ".join(f"{m.get(k, 0.0):.3f}" for k in METRICS)
            + (f" | {timing.get(name, 0.0):.1f} |" if timing else " |") for name, m in runs.items()]
    return [head, rule, *rows]
