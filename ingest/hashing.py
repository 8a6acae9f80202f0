"""The project's one file hasher: a file's SHA-256, read in blocks (documents' ids, model checksums)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable


def file_sha256(path: str | os.PathLike[str], bufsize: int = 1 << 20,
                progress: Callable[[int, int], None] | None = None) -> str:
    """The hex SHA-256 of the file's bytes; `progress(done, total)` after each block when given."""
    h, done = hashlib.sha256(), 0
    total = os.stat(path).st_size if progress else 0
    with open(path, "rb") as fh:
        while block := fh.read(bufsize):
            h.update(block)
            done += len(block)
            if progress:
                progress(done, total)
    return h.hexdigest()
