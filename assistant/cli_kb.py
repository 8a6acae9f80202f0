"""`citeline ingest | status | remove | reindex`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from assistant.cli import add_kb_argument, add_model_arguments
from assistant.progress import ProgressBar
from assistant.sdk import Citeline


def register(sub: Any) -> None:
    p = sub.add_parser("ingest", help="ingest files and folders into a knowledge base (incremental)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_kb_argument(p)
    add_model_arguments(p)
    p.add_argument("--password", action="append", default=[], metavar="PW", help="password for encrypted PDFs (repeatable)")
    p.add_argument("--passwords-file", metavar="FILE", help="a file with one password per line")
    p.add_argument("--prune", action="store_true", help="remove files that are gone from the given folders")
    p.add_argument("--no-ocr", action="store_true", help="do not OCR pages without a text layer")
    p.add_argument("--workers", type=_at_least_one, default=None, metavar="N",
                   help="parser processes (default: the number of cores, at most 4)")
    p.add_argument("--json", action="store_true", help="print one JSON report on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("status", help="what a knowledge base holds")
    add_kb_argument(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("remove", help="remove files (or everything under a folder) from a knowledge base")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_kb_argument(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser("reindex", help="re-embed a knowledge base (e.g. with a different model)")
    add_kb_argument(p)
    add_model_arguments(p)
    p.set_defaults(func=cmd_reindex)


def _sdk(args: argparse.Namespace, **kb: Any) -> Citeline:
    return Citeline(args.kb, text_model=getattr(args, "text_model", None),
                    image_model=getattr(args, "image_model", None), **kb)


def read_passwords(args: argparse.Namespace) -> list[str]:
    passwords = list(args.password)
    if args.passwords_file:
        # keep each line exactly (minus the newline): spaces and non-ASCII characters are legal in passwords
        lines = Path(args.passwords_file).read_text(encoding="utf-8").splitlines()
        passwords += [line for line in lines if line]
    return passwords


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def cmd_ingest(args: argparse.Namespace) -> int:
    sdk = _sdk(args)
    from dataclasses import replace

    if args.no_ocr:
        sdk.settings = replace(sdk.settings, kb=replace(sdk.settings.kb, ocr=False))
    if args.workers is not None:
        kb = sdk.settings.kb
        sdk.settings = replace(sdk.settings, kb=replace(kb, limits=replace(kb.limits, workers=args.workers)))
    progress = None if args.quiet else ProgressBar(sys.stderr)
    sdk.ingest(*args.paths, passwords=read_passwords(args), prune=args.prune, progress=progress)
    report = sdk.last_report
    assert report is not None
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        _print_ingest_table(report.to_json())
    return 1 if report.totals["failed"] else 0


def _print_ingest_table(data: dict[str, Any]) -> None:
    rows = [f for f in data["files"] if f["status"] in ("ingested", "failed")]
    if rows:
        print(f"{'status':<9} {'pages':>5} {'chunks':>6} {'figs':>4}  file")
        for f in rows:
            print(f"{f['status']:<9} {f['pages']:>5} {f['chunks']:>6} {f['figures']:>4}  {f['path']}")
            if f["error"]:
                print(f"{'':<9} error: {f['error']}")
            if f.get("warning"):
                print(f"{'':<9} warning: {f['warning']}")
    t = data["totals"]
    print(f"\n{t['ingested']} ingested, {t['unchanged']} unchanged, {t['failed']} failed, {t['skipped']} skipped"
          f" ({t['pages']} pages, {t['chunks']} chunks, {t['figures']} figures, {t['pruned']} pruned)"
          f" in {t['seconds']:.1f} s")


def cmd_status(args: argparse.Namespace) -> int:
    status = _sdk(args).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    c = status["counts"]
    print(f"knowledge base: {status['kb']}")
    print(f"  {c['documents']} documents, {c['pages']} pages ({c['ocr_pages']} OCR), {c['chunks']} passages, "
          f"{c['figures']} figures")
    for name, info in status["spaces"].items():
        print(f"  {name} index: {info['model']} ({info['dimension']}-d), {info['vectors']} vectors")
    if status["failed"]:
        print(f"  {len(status['failed'])} failed files:")
        for f in status["failed"]:
            print(f"    {f['path']}: {f['error']}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    removed = _sdk(args).remove(*args.paths)
    if args.json:
        print(json.dumps({"removed": removed}))
    else:
        for path in removed:
            print(f"removed {path}")
        print(f"{len(removed)} file(s) removed")
    return 0 if removed else 1


def cmd_reindex(args: argparse.Namespace) -> int:
    counts = _sdk(args).reindex()
    print(", ".join(f"{space}: {n} vectors" for space, n in counts.items()) or "nothing to reindex")
    return 0
