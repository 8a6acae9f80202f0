"""The parser worker process: JSON requests in on stdin, JSON results out on a private pipe.

Run by `ingest.isolation.IsolatedParser` as `python -m ingest.worker FD`. Parsing untrusted files happens
here, under the parent's time and memory bounds, so a hostile file can kill this process but never the ingest.
Stdout is pointed at stderr so that no library chatter can corrupt the protocol.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any

from ingest.errors import FileError, FileVanished, is_out_of_memory, out_of_memory
from ingest.protocols import ParseOptions
from ingest.types import document_to_json


def handle(request: dict[str, Any]) -> dict[str, Any]:
    from ingest.parsers import parse_file

    options = ParseOptions(**{**request["options"], "passwords": tuple(request["options"].get("passwords", ()))})
    path = request["path"]
    try:
        doc = parse_file(path, request["sha256"], options)
    except Exception as exc:
        return failure(path, exc)
    return {"ok": True, "doc": document_to_json(doc)}


def failure(path: str, exc: Exception) -> dict[str, Any]:
    """The response for a file that did not parse: its own error, or what the exception means for the user."""
    if not os.path.exists(path):  # deleted or moved mid-parse: whatever the parser said, that is the cause
        exc = FileVanished(path)
    if is_out_of_memory(exc):
        exc = out_of_memory(path)
    if isinstance(exc, FileError):
        return {"ok": False, "error_type": type(exc).__name__, "message": str(exc)}
    # a parser bug or a library failure on a hostile file: report, never crash
    detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return {"ok": False, "error_type": "CorruptFile",
            "message": f"{path}: could not parse ({detail}); re-save or repair it"}


def main() -> int:
    out = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
    os.dup2(2, 1)  # anything printed by a library goes to stderr, not into the protocol
    for line in sys.stdin:
        if not line.strip():
            continue
        response = handle(json.loads(line))
        out.write(json.dumps(response) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
