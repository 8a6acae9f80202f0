"""`citeline eval retrieval --dataset KIND:PATH [--json]` (and `citeline eval qa` when eval/qa.py provides it).

Each eval module that wants a sub-command exposes `register(eval_sub)`; this group finds them by name.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from assistant.cli import register_modules

# optional siblings adding `citeline eval <name>`
EVAL_MODULES = ("eval.qa", "eval.verify", "eval.injection", "eval.charts")


def register(sub: Any) -> None:
    p = sub.add_parser("eval", help="measure retrieval (and answering) on public datasets")
    eval_sub = p.add_subparsers(dest="eval_command", metavar="EVAL")
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])
    _register_retrieval(eval_sub)
    register_modules(eval_sub, EVAL_MODULES)


def default_cache_dir() -> Path:
    home = os.environ.get("CITELINE_EVAL_CACHE")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("citeline")) / "eval"


def _register_retrieval(eval_sub: Any) -> None:
    p = eval_sub.add_parser("retrieval", help="nDCG@10, Recall@1/5/10/100, MRR per retriever and fused")
    p.add_argument("--dataset", required=True, metavar="KIND:PATH",
                   help="beir:DIR (corpus/queries/qrels), mmlongbench:DIR (PDF pages), coco:DIR (text→image)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout instead of the markdown report")
    p.add_argument("--report", metavar="FILE", help="also write the markdown report to FILE")
    p.add_argument("--cache-dir", metavar="DIR", default=None,
                   help="where built eval KBs are cached (default: $CITELINE_EVAL_CACHE or the user cache dir)")
    p.add_argument("--text-model", default="minilm-q8")
    p.add_argument("--image-model", default="tagger")
    p.add_argument("--rescore", metavar="SPEC", default=None,
                   help="add a fused+rescore run with this re-scorer (e.g. mpnet)")
    p.add_argument("--weight", action="append", default=[], metavar="NAME=W", help="RRF weight of a retriever")
    p.add_argument("--rrf-k", type=int, default=60)
    p.add_argument("--scope", choices=("corpus", "document"), default="corpus",
                   help="mmlongbench: rank pages of all documents (default) or of the question's document only")
    p.add_argument("--limit", type=int, default=None, help="only the first N queries")
    p.add_argument("--rebuild", action="store_true", help="rebuild the cached KB")
    p.set_defaults(func=cmd_retrieval)


def cmd_retrieval(args: argparse.Namespace) -> int:
    from eval.retrieval import EvalConfig, markdown, parse_dataset, run

    try:
        kind, path = parse_dataset(args.dataset)
        weights = {k: float(v) for k, _, v in (w.partition("=") for w in args.weight)}
    except ValueError as exc:
        print(f"citeline: error: {exc}", file=sys.stderr)
        return 2
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such dataset folder")
    config = EvalConfig(kind, path, Path(args.cache_dir) if args.cache_dir else default_cache_dir(),
                        text_model=args.text_model, image_model=args.image_model, rescore=args.rescore,
                        weights=weights, rrf_k=args.rrf_k, limit=args.limit, rebuild=args.rebuild,
                        scope=args.scope)
    result = run(config)
    report = markdown(result)
    if args.report:
        Path(args.report).write_text(report, encoding="utf-8")
    print(json.dumps(result, indent=2) if args.json else report)
    return 0
