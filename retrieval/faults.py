"""Fault injection for the crash tests: `CITELINE_FAULT=<point>[:<n>]` hard-exits the process (`os._exit`, no
cleanup, no flush of anything but the message) the n-th time (default: first) the named point is reached.

A no-op unless the variable is set. The points are the moments a write can be cut short:

    before_catalog_commit   inside a catalog transaction, every row written, COMMIT not yet run
    after_catalog_commit    right after a COMMIT (assets of dropped documents not yet deleted, caches not saved)
    between_documents       an ingest has committed and reported a document, the next not yet stored
    mid_faiss_save          a FAISS cache's temporary file is written and synced, not yet renamed over the old one
    mid_manifest_write      manifest.json.tmp is written, not yet renamed over manifest.json
"""

from __future__ import annotations

import os
import sys

ENV = "CITELINE_FAULT"
EXIT_CODE = 86  # what a process killed by an injected fault exits with
POINTS = ("before_catalog_commit", "after_catalog_commit", "between_documents", "mid_faiss_save",
          "mid_manifest_write")

_reached: dict[str, int] = {}


def point(name: str) -> None:
    """Hard-exit here if `CITELINE_FAULT` names this point (and this is its n-th time)."""
    spec = os.environ.get(ENV)  # read at each call: the hook is for subprocesses started by the tests
    if not spec:
        return
    wanted, _, nth = spec.partition(":")
    if wanted != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] >= int(nth or 1):
        sys.stderr.write(f"citeline: fault injected at {name} ({_reached[name]})\n")
        sys.stderr.flush()
        os._exit(EXIT_CODE)
