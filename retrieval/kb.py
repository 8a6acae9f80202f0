"""The knowledge base on disk: catalog + one FAISS index per embedding space + assets + manifest.

    <kb>/catalog.sqlite   documents, files, pages, chunks, vectors, BM25 (source of truth)
    <kb>/index/<space>.faiss   derived caches (header: catalog generation, vectors epoch, CRC), healed on open
    <kb>/assets/<doc_id>/  page thumbnails and figure crops
    <kb>/manifest.json    what built the index (models, dimensions, chunker, version): a readable mirror of the
                          catalog's `manifest` meta row, rewritten by the next writer when a crash left it behind
    <kb>/lock             the writer lock

`KnowledgeBase.check()` verifies all of it (`citeline check`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from retrieval import faults
from retrieval.catalog import Catalog
from retrieval.embedding import embed_stored_chunks
from retrieval.errors import EmbedderMismatch, KBError
from retrieval.integrity import check_kb
from retrieval.kb_layout import manifest_file_state, orphan_asset_dirs
from retrieval.lock import WriterLock
from retrieval.settings import IMAGE, TEXT, KBSettings, ModelSet, space_info
from retrieval.vectors import VectorIndex

VERSION = "0.1.0"


def default_kb_dir() -> Path:
    """`$CITELINE_HOME/kb`, else the user data dir (e.g. ~/.local/share/citeline/kb)."""
    home = os.environ.get("CITELINE_HOME")
    if home:
        return Path(home).expanduser() / "kb"
    from platformdirs import user_data_dir

    return Path(user_data_dir("citeline")) / "kb"


class KnowledgeBase:
    def __init__(self, root: Path, catalog: Catalog, settings: KBSettings, models: ModelSet,
                 lock: WriterLock | None) -> None:
        self.root = root
        self.catalog = catalog
        self.settings = settings
        self.models = models
        self._lock = lock
        self._indexes: dict[str, VectorIndex] = {}
        self._index_generation: dict[str, int] = {}
        self._index_epoch: dict[str, int] = {}
        self._saved: dict[str, tuple[int, int]] = {}  # (generation, epoch) each space's file holds, when known

    # -- opening ----------------------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | Path | None = None, settings: KBSettings | None = None, *, writable: bool = False,
             factory: Callable[[str, str], Any] | None = None, check_manifest: bool = True) -> KnowledgeBase:
        root = Path(root).expanduser() if root else default_kb_dir()
        settings = settings or KBSettings()
        db_path = root / "catalog.sqlite"
        if not writable and not db_path.exists():
            raise KBError(f"no knowledge base at {root}: create one with `citeline ingest FOLDER --kb {root}`")
        lock = None
        if writable:
            root.mkdir(parents=True, exist_ok=True)
            (root / "index").mkdir(exist_ok=True)
            (root / "assets").mkdir(exist_ok=True)
            lock = WriterLock(root).acquire()
        try:
            catalog = Catalog(str(db_path), readonly=not writable)
            manifest = _read_manifest(catalog)
            resolved = settings.resolved(manifest)
            if manifest and check_manifest:
                _check_manifest(root, manifest, resolved)
            kb = cls(root, catalog, resolved, ModelSet(resolved, factory), lock)
            if writable and not manifest:
                kb._write_manifest()
            elif writable and manifest:
                kb._heal_manifest_file(manifest)
        except BaseException:
            if lock:
                lock.release()
            raise
        return kb

    @property
    def writable(self) -> bool:
        return self._lock is not None

    @property
    def assets_dir(self) -> Path:
        return self.root / "assets"

    @property
    def manifest(self) -> dict[str, Any]:
        return _read_manifest(self.catalog) or {}

    def close(self) -> None:
        if self.writable:
            self.save_indexes()
            self._sweep()
        self.catalog.close()
        if self._lock:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- indexes ----------------------------------------------------------------------------------------
    def spaces(self) -> dict[str, dict[str, Any]]:
        return dict(self.manifest.get("spaces", {}))

    def index(self, space: str) -> VectorIndex | None:
        """The FAISS index of a space, brought up to date with the catalog; None if the space is empty.

        Read in one catalog snapshot, so a writer committing meanwhile never leaves the index tagged with a
        generation it does not hold. A cache from another vectors epoch (before a reindex) is rebuilt, not
        synced: its ids match, its vectors are another model's."""
        with self.catalog.snapshot():
            info = self.spaces().get(space)
            if not info:
                return None
            generation, epoch = self.catalog.generation, self.catalog.vectors_epoch
            if space in self._indexes and self._index_epoch.get(space) != epoch:
                del self._indexes[space]
            if space in self._indexes and self._index_generation.get(space) == generation:
                return self._indexes[space]
            if space not in self._indexes:
                index, saved_at = VectorIndex.load(self.index_path(space), int(info["dimension"]), epoch)
                self._indexes[space] = index
                self._index_generation[space] = saved_at
                self._index_epoch[space] = epoch
                self._saved[space] = (saved_at, epoch)
            if self._index_generation[space] != generation:
                self._indexes[space].sync(self.catalog, space)
                self._index_generation[space] = generation
            return self._indexes[space]

    def index_path(self, space: str) -> Path:
        return self.root / "index" / f"{space}.faiss"

    def save_indexes(self) -> None:
        with self.catalog.snapshot():
            generation, epoch = self.catalog.generation, self.catalog.vectors_epoch
            current = {space: self.index(space) for space in self.spaces()}
        for space, index in current.items():
            if index is not None and self._saved.get(space) != (generation, epoch):
                index.save(self.index_path(space), generation, epoch)
                self._saved[space] = (generation, epoch)

    def register_space(self, space: str, model: str, dimension: int, normalized: bool = True) -> None:
        manifest = self.manifest
        spaces = manifest.setdefault("spaces", {})
        current = spaces.get(space)
        if current and (current["model"] != model or int(current["dimension"]) != dimension):
            raise EmbedderMismatch(_mismatch_message(self.root, space, current, model))
        if current is None:
            spaces[space] = space_info(model, dimension, normalized)
            self._write_manifest(manifest)

    def _write_manifest(self, manifest: dict[str, Any] | None = None) -> None:
        """The catalog's row first (the truth), then its mirror `manifest.json`."""
        manifest = self._stamped_manifest(manifest)
        self.catalog.set_meta("manifest", json.dumps(manifest))
        self._mirror_manifest(manifest)

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

    def _mirror_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.root / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2))
        faults.point("mid_manifest_write")
        os.replace(tmp, self.root / "manifest.json")

    def _heal_manifest_file(self, manifest: dict[str, Any]) -> None:
        """A crash between the catalog's manifest row and its mirror leaves manifest.json behind: rewrite it."""
        if manifest_file_state(self.root, manifest) is not None:
            self._mirror_manifest(manifest)

    def _sweep(self) -> None:
        """What a crashed writer can leave behind, removed by the next one (it holds the lock): temporary
        files, and the asset folders of documents that were never committed or whose removal was cut short."""
        for tmp in [self.root / "manifest.json.tmp", *(self.root / "index").glob("*.tmp")]:
            tmp.unlink(missing_ok=True)
        for folder in orphan_asset_dirs(self.assets_dir, self.catalog):
            shutil.rmtree(folder, ignore_errors=True)

    # -- maintenance ------------------------------------------------------------------------------------
    def remove(self, paths: list[str]) -> list[str]:
        """Forget files (and their documents when no other file holds the same content)."""
        self._require_writable("remove")
        removed: list[str] = []
        known = {row["path"] for row in self.catalog.files()}
        for raw in paths:
            target = str(Path(raw).expanduser().resolve())
            matches = [p for p in known if p == target or p.startswith(target.rstrip("/") + "/")]
            for path in matches:
                with self.catalog.transaction() as db:
                    doc_ids = [r[0] for r in db.execute("SELECT doc_id FROM files WHERE path=?", (path,))]
                    self.catalog.drop_file(db, path)
                for doc_id in doc_ids:
                    if doc_id and not self.catalog.has_document(doc_id):
                        shutil.rmtree(self.assets_dir / doc_id, ignore_errors=True)
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
        vectors = embed_stored_chunks(self.catalog, self.models, self.assets_dir, manifest["spaces"], progress)
        manifest = self._stamped_manifest(manifest)
        with self.catalog.transaction() as db:  # vectors, the manifest naming their model, and the new epoch
            db.execute("DELETE FROM vectors")
            for space, (ids, matrix) in vectors.items():
                db.executemany("INSERT INTO vectors(space, id, vec) VALUES(?,?,?)",
                               [(space, int(i), matrix[k].tobytes()) for k, i in enumerate(ids)])
            self.catalog.set_meta("manifest", json.dumps(manifest))
            self.catalog.set_meta("vectors_epoch", str(self.catalog.generation + 1))  # this commit's generation
        self._mirror_manifest(manifest)
        self._indexes.clear()
        self._index_generation.clear()
        self._index_epoch.clear()
        self._saved.clear()
        self.save_indexes()  # the old caches are from another epoch: rebuilt from the catalog, then replaced
        for path in (self.root / "index").glob("*.faiss"):
            if path.stem not in manifest["spaces"]:
                path.unlink()  # a space the new models do not have
        return {space: len(ids) for space, (ids, _) in vectors.items()}

    def apply_delta(self, space: str, generation: int, ids: list[int], vectors: np.ndarray,
                    removed: list[int]) -> None:
        """After a commit by this writer: update the in-memory index instead of re-syncing it."""
        index = self._indexes.get(space)
        if index is None or self._index_generation.get(space) != generation - 1:
            return  # not loaded or not current: the next index() call syncs from the catalog
        index.remove(removed)
        index.add(np.asarray(ids, dtype=np.int64), vectors)
        self._index_generation[space] = generation

    def status(self) -> dict[str, Any]:
        files = self.catalog.files()
        return {
            "kb": str(self.root),
            "counts": self.catalog.counts(),
            "files": {s: sum(1 for f in files if f["status"] == s) for s in ("ingested", "failed")},
            "failed": [{"path": f["path"], "error": f["error"]} for f in files if f["status"] == "failed"],
            "spaces": {name: {**info, "vectors": int(len(self.catalog.vector_ids(name)))}
                       for name, info in self.spaces().items()},
            "manifest": self.manifest,
            "generation": self.catalog.generation,
        }

    def check(self) -> list[Any]:
        """Every inconsistency found (`retrieval.integrity.Problem`); `healed` ones are derived files that
        the next open or write repairs by itself. Read-only: safe while another process writes."""
        return check_kb(self)

    def _require_writable(self, what: str) -> None:
        if not self.writable:
            raise KBError(f"{what} needs the KB opened for writing (KnowledgeBase.open(..., writable=True))")


def _read_manifest(catalog: Catalog) -> dict[str, Any] | None:
    try:
        raw = catalog.get_meta("manifest")
    except Exception:
        return None
    return json.loads(raw) if raw else None


def _check_manifest(root: Path, manifest: dict[str, Any], settings: KBSettings) -> None:
    text = manifest.get("spaces", {}).get(TEXT)
    if text and text["model"] != settings.text_model:
        raise EmbedderMismatch(_mismatch_message(root, TEXT, text, settings.text_model or ""))
    image = manifest.get("spaces", {}).get(IMAGE)
    if image and settings.image_model not in ("none",) and image["model"] != settings.image_model:
        raise EmbedderMismatch(_mismatch_message(root, IMAGE, image, settings.image_model or ""))


def _mismatch_message(root: Path, space: str, built: dict[str, Any], wanted: str) -> str:
    flag = "--text-model" if space == TEXT else "--image-model"
    return (
        f"the knowledge base at {root} was built with {space} embedder '{built['model']}' "
        f"({built['dimension']}-d), but this run asks for '{wanted}'. Either drop {flag} (or pass "
        f"{flag} {built['model']}), or re-embed the KB with the new model: "
        f"`citeline reindex --kb {root} {flag} {wanted}`"
    )

