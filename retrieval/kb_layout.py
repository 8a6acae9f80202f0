"""The files of a knowledge base folder beside its catalog: asset folders and the manifest's mirror, as the
writer's sweep and the integrity check both read them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from retrieval.catalog import Catalog

_DOC_DIR = re.compile(r"^[0-9a-f]{24}$")  # assets/<doc_id>: the first 24 hex digits of the SHA-256


def orphan_asset_dirs(assets_dir: Path, catalog: Catalog) -> list[Path]:
    """Asset folders of no document in the catalog."""
    if not assets_dir.is_dir():
        return []
    known = {r[0] for r in catalog.db.execute("SELECT doc_id FROM documents")}
    return sorted(p for p in assets_dir.iterdir() if p.is_dir() and _DOC_DIR.match(p.name) and p.name not in known)


def manifest_file_state(root: Path, manifest: dict[str, Any]) -> str | None:
    """None when manifest.json mirrors the catalog's manifest, else what is wrong with it."""
    path = root / "manifest.json"
    try:
        on_disk = json.loads(path.read_text())
    except FileNotFoundError:
        return "manifest.json is missing"
    except ValueError:
        return "manifest.json is not valid JSON"
    return None if on_disk == manifest else "manifest.json differs from the catalog's manifest"
