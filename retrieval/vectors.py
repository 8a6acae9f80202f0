"""FAISS indexes, one per embedding space, persisted next to the catalog and healed from it on open.

Vectors are L2-normalised and searched by inner product (cosine). Below `approx_threshold` vectors the index
is exact (IndexFlatIP); above it an HNSW graph is used. Ids are the catalog's chunk row ids.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.catalog import Catalog


def _faiss() -> Any:
    import faiss

    return faiss


class VectorIndex:
    def __init__(self, dimension: int, index: Any | None = None) -> None:
        faiss = _faiss()
        self.dimension = dimension
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> np.ndarray:
        return _faiss().vector_to_array(self.index.id_map).astype(np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int] | np.ndarray) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, self.size))
        if self.size == 0:
            n = len(queries)
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids

    # -- persistence ------------------------------------------------------------------------------------
    def save(self, path: Path, generation: int) -> None:
        faiss = _faiss()
        tmp = path.with_suffix(".faiss.tmp")
        faiss.write_index(self.index, str(tmp))
        _fsync_file(tmp)
        os.replace(tmp, path)
        _write_json_atomic(path.with_suffix(".json"), {"generation": generation, "size": self.size,
                                                       "dimension": self.dimension})

    @classmethod
    def load(cls, path: Path, dimension: int) -> tuple[VectorIndex, int]:
        """Returns the index and the catalog generation it was saved at (-1 when absent or unreadable)."""
        if not path.exists():
            return cls(dimension), -1
        faiss = _faiss()
        try:
            index = faiss.read_index(str(path))
            info = json.loads(path.with_suffix(".json").read_text())
        except Exception:
            return cls(dimension), -1  # a damaged cache is rebuilt from the catalog
        if index.d != dimension:
            return cls(dimension), -1
        return cls(dimension, index), int(info.get("generation", -1))

    def sync(self, catalog: Catalog, space: str) -> bool:
        """Make the index hold exactly the catalog's vectors of `space`. Returns True if anything changed."""
        want = catalog.vector_ids(space)
        have = self.ids()
        extra = np.setdiff1d(have, want, assume_unique=True)
        missing = np.setdiff1d(want, have, assume_unique=True)
        self.remove(extra)
        for start in range(0, len(missing), 20000):
            part = missing[start : start + 20000]
            self.add(part, catalog.load_vectors(space, part.tolist(), self.dimension))
        return bool(len(extra) or len(missing))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data))
    _fsync_file(tmp)
    os.replace(tmp, path)
