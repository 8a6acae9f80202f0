"""Where page thumbnails and figure crops live. A folder by default (`FolderAssets`): parsers write into
`<root>/<doc_id>/` and the store's rows name files relative to `root`. An object store would implement the same
three methods (upload a document's folder after its commit, delete by prefix, list prefixes)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Protocol

_DOC_DIR = re.compile(r"^[0-9a-f]{24}$")  # <doc_id>: the first 24 hex digits of the SHA-256


class AssetStore(Protocol):
    root: Path  # the local folder parsers write into (a staging folder, for a remote store)

    def remove(self, doc_id: str) -> None: ...
    def orphans(self, known: set[str]) -> list[Path]: ...


class FolderAssets:
    def __init__(self, root: Path) -> None:
        self.root = root

    def remove(self, doc_id: str) -> None:
        """A document's thumbnails and crops (call after the commit that dropped its rows, never before)."""
        shutil.rmtree(self.root / doc_id, ignore_errors=True)

    def orphans(self, known: set[str]) -> list[Path]:
        """Document folders of no document in `known`."""
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and _DOC_DIR.match(p.name) and p.name not in known)
