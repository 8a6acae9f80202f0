"""The local backend: a folder holding the SQLite catalog (rows, vectors, FTS5), FAISS caches, assets and manifest.

    <kb>/catalog.sqlite   documents, files, pages, chunks, vectors, BM25 (source of truth; `retrieval.catalog`)
    <kb>/index/<space>.faiss   derived caches (header: catalog generation, vectors epoch, CRC), healed on open
    <kb>/assets/<doc_id>/  page thumbnails and figure crops
    <kb>/manifest.json    a readable mirror of the catalog's `manifest` meta row, rewritten by the next writer
                          when a crash left it behind
    <kb>/lock             the writer lock (`retrieval.lock`)
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ingest.types import Chunk, ParsedDocument
from retrieval import faults
from retrieval.catalog import Catalog
from retrieval.errors import KBError
from retrieval.kb_layout import manifest_file_state
from retrieval.lexical import LexicalIndex, filter_sql, is_empty
from retrieval.lock import WriterLock
from retrieval.store.assets import FolderAssets
from retrieval.store.protocol import DocMeta, DocumentRow, StoredChunk, VectorRows
from retrieval.types import SearchFilters
from retrieval.vectors import VectorIndex


class LocalStore:
    """SQLite + FTS5 + FAISS in one folder. FAISS indexes are caches of the catalog's `vectors` table, brought up
    to date on use (by generation) and rebuilt when their vectors epoch is not the catalog's (after a reindex)."""

    def __init__(self, root: Path, *, writable: bool = False) -> None:
        self.root = root
        self.location = str(root)
        self.assets = FolderAssets(root / "assets")
        self.assets_dir = self.assets.root
        db_path = root / "catalog.sqlite"
        if not writable and not db_path.exists():
            raise KBError(f"no knowledge base at {root}: create one with `citeline ingest FOLDER --kb {root}`")
        self._lock: WriterLock | None = None
        if writable:
            root.mkdir(parents=True, exist_ok=True)
            (root / "index").mkdir(exist_ok=True)
            self.assets_dir.mkdir(exist_ok=True)
            self._lock = WriterLock(root).acquire()
        try:
            self.catalog = Catalog(str(db_path), readonly=not writable)
        except BaseException:
            self._release()
            raise
        self.lexical = LexicalIndex(self.catalog)
        self._indexes: dict[str, VectorIndex] = {}
        self._index_generation: dict[str, int] = {}
        self._index_epoch: dict[str, int] = {}
        self._saved: dict[str, tuple[int, int]] = {}  # (generation, epoch) each space's file holds, when known
        self._filter_cache: dict[Any, np.ndarray] = {}

    @property
    def writable(self) -> bool:
        return self._lock is not None

    def close(self) -> None:
        if self.writable:
            self.flush()
            self._sweep()
        self.catalog.close()
        self._release()

    def _release(self) -> None:
        if self._lock:
            self._lock.release()
            self._lock = None

    # -- meta and transactions --------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        return self.catalog.get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        self.catalog.set_meta(key, value)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """The catalog's row first (the truth), then its mirror `manifest.json`."""
        self.catalog.set_meta("manifest", json.dumps(manifest))
        self._mirror_manifest(manifest)

    def heal(self, manifest: dict[str, Any]) -> None:
        """A crash between the catalog's manifest row and its mirror leaves manifest.json behind: rewrite it."""
        if self.writable and manifest_file_state(self.root, manifest) is not None:
            self._mirror_manifest(manifest)

    @property
    def generation(self) -> int:
        return self.catalog.generation

    def transaction(self) -> Any:
        return self.catalog.transaction()

    def snapshot(self) -> Any:
        return self.catalog.snapshot()

    # -- writes -----------------------------------------------------------------------------------------
    def put_document(self, doc: ParsedDocument, name: str, size: int, chunks: Sequence[Chunk],
                     chunk_meta: Sequence[dict[str, Any]], vectors: VectorRows) -> list[int]:
        return self.catalog.put_document(self.catalog.db, doc, name, size, chunks, chunk_meta, vectors)

    def put_file(self, path: str, doc_id: str | None, sha: str | None, size: int, mtime: float, status: str,
                 error: str | None = None) -> None:
        self.catalog.put_file(self.catalog.db, path, doc_id, sha, size, mtime, status, error)

    def drop_file(self, path: str) -> list[int]:
        return self.catalog.drop_file(self.catalog.db, path)

    def replace_vectors(self, vectors: VectorRows, manifest: dict[str, Any]) -> None:
        with self.catalog.transaction() as db:  # vectors, the manifest naming their model, and the new epoch
            self.catalog.replace_vectors(db, vectors)
            self.catalog.set_meta("manifest", json.dumps(manifest))
            self.catalog.set_meta("vectors_epoch", str(self.catalog.generation + 1))  # this commit's generation
        self._mirror_manifest(manifest)
        self._indexes.clear()
        self._index_generation.clear()
        self._index_epoch.clear()
        self._saved.clear()
        self.flush()  # the old caches are from another epoch: rebuilt from the catalog, then replaced
        for path in (self.root / "index").glob("*.faiss"):
            if path.stem not in manifest.get("spaces", {}):
                path.unlink()  # a space the new models do not have

    # -- reads ------------------------------------------------------------------------------------------
    def file_row(self, path: str) -> dict[str, Any] | None:
        return self.catalog.file_row(path)

    def files(self) -> list[dict[str, Any]]:
        return self.catalog.files()

    def has_document(self, doc_id: str) -> bool:
        return self.catalog.has_document(doc_id)

    def documents(self) -> list[DocumentRow]:
        return self.catalog.documents()

    def doc_meta(self, doc_ids: Sequence[str] | None = None) -> dict[str, DocMeta]:
        return self.catalog.doc_meta(doc_ids)

    def page(self, doc_id: str, number: int) -> dict[str, Any] | None:
        return self.catalog.page(doc_id, number)

    def page_texts(self, doc_id: str, number: int | None = None) -> dict[int, str]:
        return self.catalog.page_texts(doc_id, number)

    def chunk_ids(self, doc_id: str | None = None, page: int | None = None, kind: str | None = None) -> list[int]:
        return self.catalog.chunk_ids(doc_id, page, kind)

    def get_chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        return self.catalog.get_chunks(ids)

    def vector_ids(self, space: str) -> np.ndarray:
        return self.catalog.vector_ids(space)

    def load_vectors(self, space: str, ids: Sequence[int], dimension: int) -> np.ndarray:
        return self.catalog.load_vectors(space, ids, dimension)

    def counts(self) -> dict[str, int]:
        return self.catalog.counts()

    # -- search -----------------------------------------------------------------------------------------
    def vector_search(self, space: str, vector: np.ndarray, k: int, filters: SearchFilters | None = None,
                      kinds: tuple[str, ...] = ()) -> list[int]:
        index = self.index(space)
        allowed = self._allowed(filters, kinds)
        if index is None or (allowed is not None and not len(allowed)):
            return []
        _, ids = index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), k, allowed=allowed)
        return [int(i) for i in ids[0] if i >= 0]

    def lexical_search(self, query: str, k: int, filters: SearchFilters | None = None) -> list[tuple[int, float]]:
        return self.lexical.search(query, k, filters)

    def lexical_pages(self, query: str, k: int,
                      filters: SearchFilters | None = None) -> list[tuple[str, int, float]]:
        return self.lexical.search_pages(query, k, filters)

    def _allowed(self, filters: SearchFilters | None, kinds: tuple[str, ...]) -> np.ndarray | None:
        """The chunk ids passing the filters (None: no restriction); cached per generation."""
        if is_empty(filters) and not kinds:
            return None
        key = (self.catalog.generation, filters, kinds)
        if key not in self._filter_cache:
            f = filter_sql(filters)
            where, params = f.where, list(f.params)
            if kinds:
                where += f" AND c.kind IN ({','.join('?' * len(kinds))})"
                params += list(kinds)
            rows = self.catalog.db.execute(
                f"SELECT c.id FROM chunks c JOIN documents d ON d.doc_id = c.doc_id WHERE {where}", params
            ).fetchall()
            self._filter_cache.clear()
            self._filter_cache[key] = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return self._filter_cache[key]

    # -- the FAISS caches -------------------------------------------------------------------------------
    @property
    def manifest(self) -> dict[str, Any]:
        raw = self.catalog.get_meta("manifest")
        return dict(json.loads(raw)) if raw else {}

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

    def flush(self) -> None:
        """Save every FAISS cache that is behind the catalog."""
        with self.catalog.snapshot():
            generation, epoch = self.catalog.generation, self.catalog.vectors_epoch
            current = {space: self.index(space) for space in self.spaces()}
        for space, index in current.items():
            if index is not None and self._saved.get(space) != (generation, epoch):
                index.save(self.index_path(space), generation, epoch)
                self._saved[space] = (generation, epoch)

    def before_write(self) -> None:
        """Bring the indexes up to date before a commit, so its delta can be applied in memory after it."""
        for space in self.spaces():
            self.index(space)

    def after_write(self, ids: list[int], vectors: VectorRows, dropped: list[int]) -> None:
        """After a commit by this writer: update the in-memory indexes instead of re-syncing them."""
        generation = self.catalog.generation
        for space in self.spaces():
            positions, matrix = vectors.get(space, ([], np.zeros((0, 1), dtype=np.float32)))
            self.apply_delta(space, generation, [ids[p] for p in positions], matrix, dropped)

    def apply_delta(self, space: str, generation: int, ids: list[int], vectors: np.ndarray,
                    removed: list[int]) -> None:
        index = self._indexes.get(space)
        if index is None or self._index_generation.get(space) != generation - 1:
            return  # not loaded or not current: the next index() call syncs from the catalog
        index.remove(removed)
        index.add(np.asarray(ids, dtype=np.int64), np.asarray(vectors))
        self._index_generation[space] = generation

    # -- files beside the catalog -----------------------------------------------------------------------
    def _mirror_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.root / "manifest.json.tmp"
        tmp.write_text(json.dumps(manifest, indent=2))
        faults.point("mid_manifest_write")
        os.replace(tmp, self.root / "manifest.json")

    def _sweep(self) -> None:
        """What a crashed writer can leave behind, removed by the next one (it holds the lock): temporary
        files, and the asset folders of documents that were never committed or whose removal was cut short."""
        for tmp in [self.root / "manifest.json.tmp", *(self.root / "index").glob("*.tmp")]:
            tmp.unlink(missing_ok=True)
        for folder in self.assets.orphans(self.catalog.doc_ids()):
            shutil.rmtree(folder, ignore_errors=True)

    def check(self) -> list[Any]:
        from retrieval.integrity import check_kb

        return check_kb(self)
