"""The knowledge base: a store (`retrieval.store`: rows, vectors per embedding space, full-text index, manifest)
plus the models that embed into it.

A location is a folder (the local backend: SQLite catalog, FAISS caches, assets, manifest.json, lock; see
`retrieval.store.local`) or a `postgresql://` DSN (`retrieval.store.postgres`), or a folder whose `store.json`
names a DSN. `KnowledgeBase.check()` verifies it all (`citeline check`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from retrieval.embedding import embed_stored_chunks
from retrieval.errors import EmbedderMismatch, KBError
from retrieval.settings import IMAGE, TEXT, KBSettings, ModelSet, space_info
from retrieval.store import Store, is_dsn, open_store

VERSION = "0.1.0"


def default_kb_dir() -> Path:
    """`$CITELINE_HOME/kb`, else the user data dir (e.g. ~/.local/share/citeline/kb)."""
    home = os.environ.get("CITELINE_HOME")
    if home:
        return Path(home).expanduser() / "kb"
    from platformdirs import user_data_dir

    return Path(user_data_dir("citeline")) / "kb"


def default_assets_dir(dsn: str) -> Path:
    """Thumbnails and crops of a server KB, when no folder is given: beside the default KB, one folder per
    server and database (`store.json`'s "assets" or `KnowledgeBase.open(..., assets_dir=)` choose another)."""
    import hashlib
    import re

    key = re.sub(r"(://[^:/@]*):[^@]*@", r"\1@", dsn.split("?")[0])
    return default_kb_dir().parent / "servers" / hashlib.sha256(key.encode()).hexdigest()[:16] / "assets"


class KnowledgeBase:
    def __init__(self, store: Store, settings: KBSettings, models: ModelSet) -> None:
        self.store = store
        self.settings = settings
        self.models = models

    # -- opening ----------------------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | Path | None = None, settings: KBSettings | None = None, *, writable: bool = False,
             factory: Callable[[str, str], Any] | None = None, check_manifest: bool = True,
             assets_dir: str | Path | None = None) -> KnowledgeBase:
        """`root`: a KB folder, a `postgresql://` DSN, or None (the default folder). A writable KB holds the
        single-writer lock until `close()`."""
        location: str | Path = str(root) if is_dsn(root) else (Path(root).expanduser() if root else default_kb_dir())
        settings = settings or KBSettings()
        if assets_dir is None and is_dsn(location):
            assets_dir = default_assets_dir(str(location))
        store = open_store(location, writable=writable, assets_dir=assets_dir)
        try:
            manifest = _read_manifest(store)
            resolved = settings.resolved(manifest)
            if manifest and check_manifest:
                _check_manifest(store.location, manifest, resolved)
            kb = cls(store, resolved, ModelSet(resolved, factory))
            if writable and not manifest:
                kb._write_manifest()
            elif writable and manifest:
                heal = getattr(store, "heal", None)
                if heal is not None:
                    heal(manifest)
        except BaseException:
            store.close()
            raise
        return kb

    @property
    def location(self) -> str:
        return self.store.location

    @property
    def root(self) -> Path | str:
        """The KB folder (local backend), else the DSN with its password masked."""
        return getattr(self.store, "root", self.store.location)

    @property
    def catalog(self) -> Any:
        """The local backend's SQLite catalog (tests and tools that inspect a folder KB); other backends have none."""
        catalog = getattr(self.store, "catalog", None)
        if catalog is None:
            raise KBError(f"the knowledge base at {self.location} has no SQLite catalog (it is not a folder KB)")
        return catalog

    @property
    def writable(self) -> bool:
        return self.store.writable

    @property
    def assets_dir(self) -> Path:
        return self.store.assets_dir

    @property
    def manifest(self) -> dict[str, Any]:
        return _read_manifest(self.store) or {}

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- indexes ----------------------------------------------------------------------------------------
    def spaces(self) -> dict[str, dict[str, Any]]:
        return dict(self.manifest.get("spaces", {}))

    def index(self, space: str) -> Any:
        """The local backend's FAISS index of a space, up to date with the catalog (None: empty space, or a
        backend that keeps its vectors elsewhere)."""
        index = getattr(self.store, "index", None)
        return index(space) if index is not None else None

    def save_indexes(self) -> None:
        self.store.flush()

    def register_space(self, space: str, model: str, dimension: int, normalized: bool = True) -> None:
        manifest = self.manifest
        spaces = manifest.setdefault("spaces", {})
        current = spaces.get(space)
        if current and (current["model"] != model or int(current["dimension"]) != dimension):
            raise EmbedderMismatch(_mismatch_message(self.location, space, current, model))
        if current is None:
            spaces[space] = space_info(model, dimension, normalized)
            self._write_manifest(manifest)

    def _write_manifest(self, manifest: dict[str, Any] | None = None) -> None:
        self.store.write_manifest(self._stamped_manifest(manifest))

    def _stamped_manifest(self, manifest: dict[str, Any] | None) -> dict[str, Any]:
        manifest = manifest or {
            "citeline_version": VERSION,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "spaces": {},
            "image_model": self.settings.image_model,
            "tag_images": self.settings.tag_images,
            "chunker": asdict(self.settings.chunker),
            "ocr": {"enabled": self.settings.ocr, "language": self.settings.ocr_language},
            "schema": 1,
        }
        manifest["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        return manifest

    # -- maintenance ------------------------------------------------------------------------------------
    def remove(self, paths: list[str]) -> list[str]:
        """Forget files (and their documents when no other file holds the same content)."""
        self._require_writable("remove")
        removed: list[str] = []
        known = {row["path"] for row in self.store.files()}
        for raw in paths:
            target = str(Path(raw).expanduser().resolve())
            matches = [p for p in known if p == target or p.startswith(target.rstrip("/") + "/")]
            for path in matches:
                with self.store.transaction():
                    row = self.store.file_row(path)
                    self.store.drop_file(path)
                doc_id = row["doc_id"] if row else None
                if doc_id and not self.store.has_document(doc_id):
                    self.store.assets.remove(doc_id)
                removed.append(path)
        self.save_indexes()
        return removed

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> dict[str, int]:
        """Re-embed every stored chunk with the configured models (no re-parsing) and rebuild the indexes.

        Open the KB with `check_manifest=False` to switch models. All new vectors are committed in one
        transaction, so a kill mid-way leaves the old, consistent KB.
        """
        self._require_writable("reindex")
        manifest = self.manifest
        manifest["spaces"] = {}
        manifest["image_model"] = self.settings.image_model
        vectors = embed_stored_chunks(self.store, self.models, self.assets_dir, manifest["spaces"], progress)
        self.store.replace_vectors(vectors, self._stamped_manifest(manifest))
        return {space: len(ids) for space, (ids, _) in vectors.items()}

    def status(self) -> dict[str, Any]:
        files = self.store.files()
        return {
            "kb": str(self.root),
            "counts": self.store.counts(),
            "files": {s: sum(1 for f in files if f["status"] == s) for s in ("ingested", "failed")},
            "failed": [{"path": f["path"], "error": f["error"]} for f in files if f["status"] == "failed"],
            "spaces": {name: {**info, "vectors": int(len(self.store.vector_ids(name)))}
                       for name, info in self.spaces().items()},
            "manifest": self.manifest,
            "generation": self.store.generation,
        }

    def check(self) -> list[Any]:
        """Every inconsistency found (`retrieval.integrity.Problem`); `healed` ones are derived files that
        the next open or write repairs by itself. Read-only: safe while another process writes."""
        return self.store.check()

    def _require_writable(self, what: str) -> None:
        if not self.writable:
            raise KBError(f"{what} needs the KB opened for writing (KnowledgeBase.open(..., writable=True))")


def _read_manifest(store: Store) -> dict[str, Any] | None:
    try:
        raw = store.get_meta("manifest")
    except Exception:
        return None
    return json.loads(raw) if raw else None


def _check_manifest(root: str, manifest: dict[str, Any], settings: KBSettings) -> None:
    text = manifest.get("spaces", {}).get(TEXT)
    if text and text["model"] != settings.text_model:
        raise EmbedderMismatch(_mismatch_message(root, TEXT, text, settings.text_model or ""))
    image = manifest.get("spaces", {}).get(IMAGE)
    if image and settings.image_model not in ("none",) and image["model"] != settings.image_model:
        raise EmbedderMismatch(_mismatch_message(root, IMAGE, image, settings.image_model or ""))


def _mismatch_message(root: str, space: str, built: dict[str, Any], wanted: str) -> str:
    flag = "--text-model" if space == TEXT else "--image-model"
    return (
        f"the knowledge base at {root} was built with {space} embedder '{built['model']}' "
        f"({built['dimension']}-d), but this run asks for '{wanted}'. Either drop {flag} (or pass "
        f"{flag} {built['model']}), or re-embed the KB with the new model: "
        f"`citeline reindex --kb {root} {flag} {wanted}`"
    )

