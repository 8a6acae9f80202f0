"""Find the files to ingest under the paths a user gave, in a stable order."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from ingest.formats import SUPPORTED


def discover(paths: Iterable[str], suffixes: tuple[str, ...] = SUPPORTED) -> Iterator[tuple[str, bool]]:
    """Yield (absolute path, supported) for every regular file; hidden files and folders are skipped."""
    for raw in paths:
        root = Path(raw).expanduser()
        if root.is_file():
            yield str(root.resolve()), root.suffix.lower() in suffixes
            continue
        if not root.is_dir():
            raise FileNotFoundError(f"{raw}: no such file or folder")
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                full = Path(dirpath) / name
                if full.is_file():
                    yield str(full.resolve()), full.suffix.lower() in suffixes
