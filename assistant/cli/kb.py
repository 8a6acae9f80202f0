"""`citeline ingest | status | remove | reindex`."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from assistant.cli import add_kb_argument, add_model_arguments
from assistant.cli.progress import ProgressBar
from assistant.sdk import Citeline
from ingest.isolation import Limits


def register(sub: Any) -> None:
    p = sub.add_parser("ingest", help="ingest files and folders into a knowledge base (incremental)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    add_kb_argument(p)
    add_model_arguments(p)
    p.add_argument("--password", action="append", default=[], metavar="PW",
                   help="password for encrypted PDFs (repeatable)")
    p.add_argument("--passwords-file", metavar="FILE", help="a file with one password per line")
    p.add_argument("--prune", action="store_true", help="remove files that are gone from the given folders")
    p.add_argument("--no-ocr", action="store_true", help="do not OCR pages without a text layer")
    p.add_argument("--workers", type=_at_least_one, default=None, metavar="N",
                   help="parser processes (default: the number of cores, at most 4)")
    p.add_argument("--file-timeout", type=_positive, default=None, metavar="SECONDS",
                   help="stop parsing a file after this long (default 300)")
    p.add_argument("--file-memory-mb", type=_positive, default=None, metavar="MB",
                   help="address-space bound of each parser process, in MiB (default 3072)")
    p.add_argument("--max-file-mb", type=_positive, default=None, metavar="MB",
                   help="skip files larger than this, in MiB (default 1024)")
    p.add_argument("--engine", type=_engine, default=None, metavar="ENGINE",
                   help="where files are parsed and embedded: local (default) or ray://HOST:PORT (a Ray cluster)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON report on stdout (with --watch: one JSON event a line)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--watch", action="store_true",
                   help="keep watching: ingest files once they stop changing (with --prune: forget deleted ones)")
    p.add_argument("--settle", type=_positive, default=2.0, metavar="SECONDS",
                   help="with --watch: how long a file must stay unchanged before it is ingested (default 2)")
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
        # (utf-8-sig: a byte-order mark from a Windows editor is not part of the first password)
        lines = Path(args.passwords_file).read_text(encoding="utf-8-sig").splitlines()
        passwords += [line for line in lines if line]
    return passwords


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _engine(text: str) -> str:
    from retrieval.ingest_engine import build_engine

    try:
        build_engine(text)  # checks the spec only: nothing connects before the ingest starts
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def limits_from_args(args: argparse.Namespace, limits: Limits) -> Limits:
    """The per-file bounds the command line overrides (the rest stay as configured)."""
    changes: dict[str, Any] = {}
    if args.workers is not None:
        changes["workers"] = args.workers
    if args.file_timeout is not None:
        changes["seconds_per_file"] = args.file_timeout
    if args.file_memory_mb is not None:
        changes["memory_bytes"] = int(args.file_memory_mb * 1024**2)
    if args.max_file_mb is not None:
        changes["max_file_bytes"] = int(args.max_file_mb * 1024**2)
    return replace(limits, **changes)


def cmd_ingest(args: argparse.Namespace) -> int:
    sdk = _sdk(args)
    kb = sdk.settings.kb
    kb = replace(kb, ocr=kb.ocr and not args.no_ocr, limits=limits_from_args(args, kb.limits))
    sdk.settings = replace(sdk.settings, kb=kb)
    if args.watch and args.engine not in (None, "local"):
        print("citeline: --watch ingests locally; drop --engine", file=sys.stderr)
        return 2
    if args.watch:  # assistant.cli.watch: an initial sync, then batches on file-system events until Ctrl-C
        from assistant.cli.watch import WatchSettings, watch

        settings = WatchSettings(settle_s=args.settle, max_wait_s=max(60.0, args.settle), prune=args.prune)
        return watch(sdk, args.paths, settings, as_json=args.json, passwords=read_passwords(args))
    progress = None if args.quiet else ProgressBar(sys.stderr)
    sdk.ingest(*args.paths, passwords=read_passwords(args), prune=args.prune, progress=progress, engine=args.engine)
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
            for bad in f.get("attachment_errors") or ():
                print(f"{'':<9} attachment not read: {bad}")
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
    if status.get("office"):
        print("  Office documents are cited to:")
        for d in status["office"]:
            print(f"    {d['doc']}: {d['label']}")
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
