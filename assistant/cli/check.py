"""`citeline check`: the knowledge base's integrity check (read-only, safe during an ingest)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from assistant.cli import add_kb_argument


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="check a knowledge base's integrity (catalog, vectors, indexes, assets)")
    add_kb_argument(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when consistent (derived files a crash left behind, which heal by themselves, are notes), 1 when
    anything needs repair."""
    from assistant.config import Settings
    from retrieval.kb import KnowledgeBase

    with KnowledgeBase.open(Settings.from_env(args.kb).kb_dir, check_manifest=False) as kb:
        problems = kb.check()
        counts = kb.store.counts()
        generation = kb.store.generation
    broken = [p for p in problems if not p.healed]
    if args.json:
        print(json.dumps({"kb": str(kb.root), "ok": not broken, "generation": generation, "counts": counts,
                          "problems": [p.to_json() for p in problems]}, indent=2))
        return 1 if broken else 0
    for p in problems:
        print(f"{'note' if p.healed else 'problem'}: [{p.kind}] {p.detail}")
    verdict = f"{len(broken)} problem(s)" if broken else "ok"
    print(f"{kb.root}: {verdict} ({counts['documents']} documents, {counts['chunks']} passages, "
          f"{counts['figures']} figures, generation {generation})")
    return 1 if broken else 0
