"""The files of a knowledge base folder beside its catalog: asset folders and the manifest's mirror, as the
writer's sweep and the integrity check both read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from retrieval.store.assets import FolderAssets


def orphan_asset_dirs(assets_dir: Path, known: set[str]) -> list[Path]:
    """Asset folders of no document in `known` (the store's doc ids)."""
    return FolderAssets(assets_dir).orphans(known)


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
