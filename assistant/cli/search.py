"""`citeline search QUERY --kb DIR [--image FILE] [--top-k N] [--doc NAME]... [--json]`."""

from __future__ import annotations

import argparse
import json
import shutil
from typing import Any

from assistant.cli import add_kb_argument
from retrieval.types import Hit, SearchFilters


def register(sub: Any) -> None:
    p = sub.add_parser("search", help="search a knowledge base (text, figures, pages; or by image)")
    p.add_argument("query", nargs="?", default=None, metavar="QUERY")
    add_kb_argument(p)
    p.add_argument("--image", metavar="FILE", help="an image file as the query (alone or with QUERY)")
    p.add_argument("--top-k", type=int, default=10, metavar="N")
    p.add_argument("--doc", action="append", default=[], metavar="NAME", help="only this document (repeatable)")
    p.add_argument("--path", metavar="GLOB", help="only files whose path matches GLOB")
    p.add_argument("--type", action="append", default=[], dest="file_types",
                   choices=("pdf", "image", "text", "docx", "pptx", "sheet", "mail", "epub"),
                   help="only this file type (repeatable)")
    p.add_argument("--pages", metavar="A-B", help="only pages A to B (1-indexed, inclusive)")
    p.add_argument("--modality", action="append", default=[], choices=("text", "table", "figure"),
                   help="only this kind of chunk (repeatable)")
    p.add_argument("--level", choices=("chunk", "page"), default="chunk", help="rank chunks or whole pages")
    p.add_argument("--retriever", action="append", default=[], metavar="NAME",
                   help="use only these retrievers: dense, bm25, figures, image, page_bm25 (repeatable)")
    p.add_argument("--rescore", action="store_true", help="re-score the top candidates with all-mpnet-base-v2")
    p.add_argument("--mmr", type=float, default=None, metavar="LAMBDA", help="diversify results (0..1, 1 = off)")
    p.add_argument("--json", action="store_true", help="print the hits as a JSON list")
    p.set_defaults(func=cmd_search)


def filters_from_args(args: argparse.Namespace) -> SearchFilters:
    pages = None
    if args.pages:
        first, _, last = args.pages.partition("-")
        pages = (int(first), int(last or first))
    return SearchFilters(docs=tuple(args.doc), path_glob=args.path, file_types=tuple(args.file_types),
                         pages=pages, modalities=tuple(args.modality))


def cmd_search(args: argparse.Namespace) -> int:
    from assistant.sdk import Citeline

    with Citeline(args.kb) as sdk:
        hits = sdk.search(args.query, image=args.image, top_k=args.top_k, filters=filters_from_args(args),
                          retrievers=args.retriever or None, rescore=args.rescore, mmr=args.mmr, level=args.level)
    if args.json:
        print(json.dumps([hit_json(h) for h in hits], indent=2))
    else:
        print_table(hits)
    return 0 if hits else 1


def hit_json(hit: Hit) -> dict[str, Any]:
    full = hit.to_json()
    keys = ("doc", "page", "bbox", "kind", "text", "score", "retrievers")
    out = {k: full[k] for k in keys}
    out["kind"] = "figure" if hit.kind == "figure" else "page" if hit.kind == "page" else "text"
    out.update({k: full[k] for k in ("doc_id", "figure_path", "section", "attached_to") if full.get(k)})
    return out


def print_table(hits: list[Hit]) -> None:
    if not hits:
        print("no results")
        return
    width = max(40, shutil.get_terminal_size((120, 20)).columns - 62)
    print(f"{'#':>3} {'score':>7}  {'document':<24} {'page':>4} {'kind':<6} {'found by':<20} text")
    for n, h in enumerate(hits, start=1):
        found = ",".join(f"{k}:{v}" for k, v in sorted(h.retrievers.items(), key=lambda kv: kv[1]))
        text = " ".join(h.text.split())
        text = text[: width - 1] + "…" if len(text) > width else text
        print(f"{n:>3} {h.score:>7.4f}  {h.doc_name[:24]:<24} {h.page:>4} {h.kind:<6} {found[:20]:<20} {text}")
