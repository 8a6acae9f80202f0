"""`citeline`: a thin command line over the SDK. Progress goes to stderr, results to stdout, --json for machines.

Exit codes: 0 success; 1 some files failed (ingest) or nothing found; 2 usage or KB error; 130 interrupted.
Sub-commands live in this package's small modules (`kb`, `ask`, `models`, `search`, `serve`, `check`, `mcp`;
`watch` and `progress` serve `ingest`), each `register()`ing its parsers; `eval` and `ui` are found by name
so that nothing in the stages below imports them. `python -m assistant.cli` runs `main`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ingest.errors import CitelineError

CORE_MODULES = ("assistant.cli.kb", "assistant.cli.ask", "assistant.cli.models", "assistant.cli.search",
                "assistant.cli.serve", "assistant.cli.check", "assistant.cli.mcp", "assistant.cli.migrate")
EDGE_MODULES = ("eval.cli", "ui.cli")  # optional edges, discovered by module name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="citeline",
                                     description="Answers over your documents, with verified citations.")
    parser.add_argument("--version", action="version", version="citeline 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_modules(sub, CORE_MODULES + EDGE_MODULES)
    return parser


def register_modules(sub: argparse._SubParsersAction, names: Sequence[str]) -> None:  # type: ignore[type-arg]
    """Let each named module add its sub-commands; a module that is not installed is passed over (a broken
    import inside one still fails loudly)."""
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except CitelineError as exc:
        print(f"citeline: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"citeline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("citeline: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def add_kb_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kb", metavar="DIR|DSN", default=None,
                        help="knowledge base folder, or a postgresql://user@host/db DSN (PostgreSQL + pgvector; "
                             "default: $CITELINE_HOME/kb or the user data dir)")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--text-model", default=None,
                        help="text embedder: minilm-q8 (offline default), minilm-int8, minilm, mpnet, "
                             "st:NAME_OR_PATH, fake")
    parser.add_argument("--image-model", default=None,
                        help="image embedder: tagger (offline default), clip:ARCH:TAG_OR_PATH, none, fake")
