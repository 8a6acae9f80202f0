"""`citeline migrate --from DIR --to postgresql://...`: copy a local KB into another store without re-embedding."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("migrate", help="copy a local KB folder into PostgreSQL (or another folder), no re-embedding")
    p.add_argument("--from", dest="source", required=True, metavar="DIR", help="the local KB folder to copy")
    p.add_argument("--to", dest="target", required=True, metavar="DSN|DIR", help="postgresql://user@host/db")
    p.add_argument("--assets", default=None, metavar="DIR",
                   help="where the target keeps thumbnails and crops (default: beside the default KB)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from retrieval.kb import KnowledgeBase
    from retrieval.store.local import LocalStore
    from retrieval.store.migrate import copy_kb

    source = LocalStore(Path(args.source).expanduser())
    try:
        with KnowledgeBase.open(args.target, writable=True, check_manifest=False, assets_dir=args.assets) as kb:
            def progress(done: int, total: int) -> None:
                print(f"\rcopied {done}/{total} documents", end="", file=sys.stderr, flush=True)

            report = copy_kb(source, kb.store, progress)
            print(file=sys.stderr)
    finally:
        source.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(f"copied {report.documents} documents ({report.chunks} chunks, vectors {report.vectors}), "
              f"{report.skipped} already there, {report.files} file rows, into {kb.location}")
    return 0
