"""FAISS indexes, one per embedding space, persisted next to the catalog and healed from it on open.

Vectors are L2-normalised here on the way in (add and search alike) and searched by inner product (cosine).
Up to `approx_threshold` vectors the index is exact (IndexFlatIP); above it an HNSW graph (IndexHNSWFlat) is
used, whose recall against exact search `bench/search_latency.py` measures. Ids are the catalog's chunk row ids.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from retrieval import faults
from retrieval.catalog import Catalog

MAGIC = b"CITELINE-FAISS\x01\n"  # a saved index: MAGIC, FAISS bytes, JSON trailer, 8-byte trailer length


def _faiss() -> Any:
    import faiss

    return faiss


def normalise(rows: Any, dtype: type[np.floating[Any]] = np.float32) -> np.ndarray:
    """C-contiguous rows, L2-normalised (zero rows stay zero), in `dtype`: float32 is what every embedder returns
    and every index stores and searches. The project's one L2-normaliser."""
    rows = np.ascontiguousarray(np.atleast_2d(rows), dtype=dtype)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return np.ascontiguousarray(rows / np.maximum(norms, 1e-12), dtype=dtype)


class VectorIndex:
    """Exact inner-product search up to `approx_threshold` vectors, an HNSW graph above it.

    An HNSW graph cannot delete, so removed ids become tombstones that searches skip; the graph is rebuilt when
    tombstones pass `COMPACT_RATIO` of it or when a tombstoned id comes back.
    """

    APPROX_THRESHOLD = 50_000
    HNSW_M = 32
    EF_CONSTRUCTION = 80
    EF_SEARCH = 128
    COMPACT_RATIO = 0.2
    EXACT_SUBSET = 8192  # a filtered HNSW search over at most this many ids is done exactly (their vectors gathered)
    EXACT_SHARE = 0.1  # ... and one over at most this share of the index too (a flat scan under a bitmap of them)
    FILTER_EF_MAX = 8  # a wider filter searches the graph with efSearch raised by up to this factor (0.8 / share)

    def __init__(self, dimension: int, index: Any | None = None, *, approx_threshold: int | None = None,
                 tombstones: Any = ()) -> None:
        faiss = _faiss()
        self.dimension = dimension
        self.approx_threshold = approx_threshold or self.APPROX_THRESHOLD
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        self._dead: set[int] = {int(i) for i in tombstones}
        self._lookup: tuple[Any, int, int, np.ndarray, np.ndarray] | None = None  # see `_live_lookup`

    @property
    def approximate(self) -> bool:
        return isinstance(_faiss().downcast_index(self.index.index), _faiss().IndexHNSW)

    @property
    def size(self) -> int:
        return int(self.index.ntotal) - len(self._dead)

    def _all_ids(self) -> np.ndarray:
        return _faiss().vector_to_array(self.index.id_map).astype(np.int64)

    def ids(self) -> np.ndarray:
        ids = self._all_ids()
        if self._dead:
            ids = ids[~np.isin(ids, np.fromiter(self._dead, dtype=np.int64))]
        return ids

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        ids = np.asarray(ids, dtype=np.int64)
        vectors = normalise(vectors)
        revived = self._dead.intersection(ids.tolist())
        crossing = not self.approximate and self.size + len(ids) > self.approx_threshold
        if revived or crossing:
            self._rebuild(ids, vectors)
        else:
            self.index.add_with_ids(vectors, ids)
        self._lookup = None

    def remove(self, ids: list[int] | np.ndarray) -> None:
        if not len(ids):
            return
        ids = np.asarray(ids, dtype=np.int64)
        self._lookup = None
        if not self.approximate:
            self.index.remove_ids(ids)
            return
        present = ids[np.isin(ids, self._all_ids())]
        self._dead.update(int(i) for i in present)
        if len(self._dead) > self.COMPACT_RATIO * max(1, int(self.index.ntotal)):
            self._rebuild(np.zeros(0, np.int64), np.zeros((0, self.dimension), np.float32))

    def _live(self) -> tuple[np.ndarray, np.ndarray]:
        n = int(self.index.ntotal)
        all_ids = self._all_ids()
        if n == 0:
            return all_ids, np.zeros((0, self.dimension), np.float32)
        vectors = self.index.index.reconstruct_n(0, n)
        keep = ~np.isin(all_ids, np.fromiter(self._dead, dtype=np.int64)) if self._dead else np.ones(n, bool)
        return all_ids[keep], vectors[keep]

    def _rebuild(self, new_ids: np.ndarray, new_vectors: np.ndarray) -> None:
        """Rebuild from the live vectors plus `new_*` (which replace live entries with the same id)."""
        ids, vectors = self._live()
        keep = ~np.isin(ids, new_ids)
        ids = np.concatenate([ids[keep], new_ids])
        vectors = np.concatenate([vectors[keep], new_vectors]).astype(np.float32)
        self.index = self._empty(len(ids))
        self._dead = set()
        self._lookup = None
        for start in range(0, len(ids), 50_000):
            self.index.add_with_ids(vectors[start : start + 50_000], ids[start : start + 50_000])

    def _empty(self, n: int) -> Any:
        faiss = _faiss()
        if n <= self.approx_threshold:
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))
        hnsw = faiss.IndexHNSWFlat(self.dimension, self.HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = self.EF_CONSTRUCTION
        return faiss.IndexIDMap2(hnsw)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None,
               ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product; `allowed` restricts to those ids. Missing slots hold id -1."""
        queries = normalise(queries)
        pool = self.size if allowed is None else len(allowed)
        k = max(1, min(k, pool))
        if self.size == 0 or pool == 0:
            n = len(queries)
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        ef = ef_search or max(self.EF_SEARCH, k)
        if allowed is not None and self.approximate:
            # HNSW under a selector finds few of a small share of the graph (recall@10 0.26 for a 1% filter of
            # 200k at efSearch 128), so small shares are searched exactly and wider ones with a wider beam
            share = len(allowed) / max(1, self.size)
            if len(allowed) <= self.EXACT_SUBSET:
                return self._exact_subset(queries, k, np.asarray(allowed, dtype=np.int64))
            if share <= self.EXACT_SHARE:
                return self._exact_scan(queries, k, np.asarray(allowed, dtype=np.int64))
            ef = int(ef * min(self.FILTER_EF_MAX, max(1.0, 0.8 / share)))
        params = self._params(allowed, ef)
        with _one_thread(len(queries) < 4):
            scores, ids = self.index.search(queries, k, params=params)
        return scores, ids

    def _params(self, allowed: np.ndarray | None, ef_search: int) -> Any:
        faiss = _faiss()
        selector = None
        if allowed is not None:
            keep = np.asarray(allowed, dtype=np.int64)
            if self._dead:
                keep = keep[~np.isin(keep, np.fromiter(self._dead, dtype=np.int64))]
            selector = faiss.IDSelectorBatch(keep)
        elif self._dead:
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(np.fromiter(self._dead, dtype=np.int64)))
        if self.approximate:
            params = faiss.SearchParametersHNSW(efSearch=ef_search)
        elif selector is None:
            return None
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
            params._selector = selector  # keep the SWIG object alive as long as the params
        return params

    def _live_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """The live ids, sorted, and each one's position in the inner index (where `reconstruct` finds it: the
        last entry of an id added twice, as IndexIDMap2's reverse map). Cached until the index changes."""
        n, dead = int(self.index.ntotal), len(self._dead)
        cached = self._lookup
        if cached is not None and cached[0] is self.index and cached[1] == n and cached[2] == dead:
            return cached[3], cached[4]
        all_ids = self._all_ids()
        order = np.argsort(all_ids, kind="stable")
        ids = all_ids[order]
        last = np.ones(len(ids), dtype=bool)
        last[:-1] = ids[1:] != ids[:-1]
        ids, positions = ids[last], order[last].astype(np.int64)
        if self._dead:
            keep = ~np.isin(ids, np.fromiter(self._dead, dtype=np.int64, count=dead))
            ids, positions = ids[keep], positions[keep]
        self._lookup = (self.index, n, dead, ids, positions)
        return ids, positions

    def _live_positions(self, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The live ids among `allowed` (in its order) and each one's position in the inner index."""
        live, positions = self._live_lookup()
        if not len(live):
            return allowed[:0], positions[:0]
        at = np.minimum(np.searchsorted(live, allowed), len(live) - 1)
        hit = live[at] == allowed
        return allowed[hit], positions[at[hit]]

    def _exact_subset(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over the live ids among `allowed` (kept in `allowed`'s order, so ties rank as there)."""
        n = len(queries)
        allowed, where = self._live_positions(allowed)
        if not len(allowed):
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        matrix = np.ascontiguousarray(self.index.index.reconstruct_batch(where), dtype=np.float32)
        sims = queries @ matrix.T
        k = min(k, len(allowed))
        top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(sims, top, axis=1).astype(np.float32), allowed[top]

    def _exact_scan(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over the live ids among `allowed`: a flat scan of the graph's own vector storage under a
        bitmap of their positions (no copy of their vectors; cheaper than gathering them past a few thousand)."""
        faiss = _faiss()
        n = len(queries)
        allowed, where = self._live_positions(allowed)
        if not len(allowed):
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        mask = np.zeros(int(self.index.ntotal), dtype=bool)
        mask[where] = True
        bits = np.packbits(mask, bitorder="little")
        params = faiss.SearchParameters()
        params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        k = min(k, len(allowed))
        with _one_thread(n < 4):
            scores, found = faiss.downcast_index(self.index.index).storage.search(queries, k, params=params)
        del bits  # the bitmap's memory stays alive until the search returns (the selector holds a raw pointer)
        id_map = self.index.id_map
        ids = np.array([[id_map.at(int(p)) if p >= 0 else -1 for p in row] for row in found], dtype=np.int64)
        return scores, ids.reshape(found.shape)

    # -- persistence ------------------------------------------------------------------------------------
    def save(self, path: Path, generation: int, epoch: int = 0) -> None:
        """One file, one rename: MAGIC, the FAISS bytes (streamed, never copied in memory), then a trailer (the
        catalog generation and vectors epoch the index holds, tombstones, size and CRC of the FAISS bytes), so
        a reader never pairs an index with another one's tag."""
        faiss = _faiss()
        tmp = path.with_suffix(".faiss.tmp")
        crc, size = 0, 0
        with open(tmp, "wb") as out:
            out.write(MAGIC)

            def write(chunk: bytes) -> None:
                nonlocal crc, size
                crc, size = zlib.crc32(chunk, crc), size + len(chunk)
                out.write(chunk)

            writer = faiss.PyCallbackIOWriter(write)
            faiss.write_index(self.index, writer)
            del writer
            trailer = json.dumps({"generation": generation, "epoch": epoch, "size": self.size,
                                  "dimension": self.dimension, "approximate": self.approximate,
                                  "tombstones": sorted(self._dead), "bytes": size, "crc32": crc}).encode()
            out.write(trailer + len(trailer).to_bytes(8, "little"))
            out.flush()
            os.fsync(out.fileno())
        faults.point("mid_faiss_save")
        os.replace(tmp, path)
        _fsync_dir(path.parent)

    @classmethod
    def load(cls, path: Path, dimension: int, epoch: int = 0) -> tuple[VectorIndex, int]:
        """Returns the index and the catalog generation it was saved at; an empty index and -1 when the file is
        absent, damaged, of another dimension, or from another vectors epoch (another model's vectors)."""
        header = read_header(path)
        if header is None or header.get("epoch") != epoch or header.get("dimension") != dimension:
            return cls(dimension), -1
        try:
            index = _read_payload(path, int(header["bytes"]), int(header["crc32"]))
        except Exception:
            index = None  # a damaged cache is rebuilt from the catalog
        if index is None or index.d != dimension:
            return cls(dimension), -1
        return cls(dimension, index, tombstones=header.get("tombstones", ())), int(header["generation"])

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


@contextmanager
def _one_thread(enabled: bool) -> Iterator[None]:
    """FAISS spreads even a single query over its OpenMP team, which only adds barrier waits (and, on a busy
    machine, many milliseconds of them); a handful of queries runs faster on the calling thread alone."""
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    if not enabled or before == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (the directory entry), where the platform allows opening a directory."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_header(path: Path) -> dict[str, Any] | None:
    """A saved index file's trailer; None when absent, not ours, or truncated (the FAISS bytes are not read)."""
    try:
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                return None
            end = f.seek(0, os.SEEK_END)
            if end < len(MAGIC) + 8:
                return None
            f.seek(end - 8)
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or n > end - len(MAGIC) - 8:
                return None
            f.seek(end - 8 - n)
            header = json.loads(f.read(n))
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict) or header.get("bytes") != end - 8 - n - len(MAGIC):
        return None
    return header


def _read_payload(path: Path, size: int, crc: int) -> Any:
    """The FAISS index stored after MAGIC, or None when its CRC does not match (checked before FAISS parses it,
    so damaged bytes never reach the parser)."""
    with open(path, "rb") as f:
        f.seek(len(MAGIC))
        got, left = 0, size
        while left:
            chunk = f.read(min(left, 1 << 20))
            if not chunk:
                return None
            got, left = zlib.crc32(chunk, got), left - len(chunk)
        if got != crc:
            return None
        f.seek(len(MAGIC))
        left = size

        def read(n: int) -> bytes:
            nonlocal left
            chunk = f.read(min(n, left))
            left -= len(chunk)
            return chunk

        faiss = _faiss()
        return faiss.read_index(faiss.PyCallbackIOReader(read))
