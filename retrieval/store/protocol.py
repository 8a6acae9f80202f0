"""The store seam: what a knowledge base keeps (documents, files, pages, chunks, vectors per embedding space, the
manifest and a generation counter) and the searches it answers (vector search with filters, lexical search).

Every write happens inside `transaction()` (one per document: a kill leaves the old state or the new one), and
bumps the generation; reads grouped in `snapshot()` see one committed state. Chunk ids are integers handed out
by the store and never reused: they are the ids vectors carry and `Hit.id` reports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ingest.types import Chunk, ParsedDocument
from retrieval.store.assets import AssetStore
from retrieval.types import SearchFilters

# space -> (positions of the vectors' chunks in the document's chunk list, or chunk ids; one matrix row each)
VectorRows = Mapping[str, tuple[Sequence[int], np.ndarray]]


def is_dsn(location: object) -> bool:
    """A PostgreSQL connection string (never to be turned into a Path)."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def masked(location: str | os.PathLike[str]) -> str:
    """A KB location for messages and pages: a DSN without its password, a folder as is."""
    text = str(location)
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", text) if is_dsn(text) else text


def kb_location(location: str | os.PathLike[str]) -> Path | str:
    """Where a KB lives, as given: a DSN stays a str, a folder becomes a Path (user folder expanded)."""
    return str(location) if is_dsn(str(location)) else Path(location).expanduser()


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as it lives in the store: the chunk plus its integer id (the vector id) and document name."""

    id: int
    chunk: Chunk
    doc_name: str
    meta: dict[str, Any]


@dataclass(frozen=True)
class DocumentRow:
    doc_id: str
    name: str
    kind: str
    title: str
    pages: int
    paths: tuple[str, ...]
    chunks: int
    figures: int


@dataclass(frozen=True)
class DocMeta:
    """A document's name, kind and the metadata its parser recorded (mail links, Office citation precision)."""

    doc_id: str
    name: str
    kind: str
    metadata: dict[str, str]


class Store(Protocol):
    """A knowledge base's storage. Backends: `LocalStore` (a folder) and `PostgresStore` (a DSN)."""

    location: str  # the folder or the DSN (password masked) it was opened from, for messages
    assets_dir: Path  # = assets.root, the folder parsers write into

    @property
    def assets(self) -> AssetStore: ...  # page thumbnails and figure crops (`retrieval.store.assets`)
    @property
    def writable(self) -> bool: ...

    def close(self) -> None: ...

    # -- meta: the manifest (JSON) and the generation ---------------------------------------------------
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def write_manifest(self, manifest: dict[str, Any]) -> None: ...
    @property
    def generation(self) -> int: ...

    def transaction(self) -> AbstractContextManager[Any]: ...
    def snapshot(self) -> AbstractContextManager[Any]: ...

    # -- writes (inside `transaction()`) -----------------------------------------------------------------
    def put_document(self, doc: ParsedDocument, name: str, size: int, chunks: Sequence[Chunk],
                     chunk_meta: Sequence[dict[str, Any]], vectors: VectorRows) -> list[int]: ...
    def put_file(self, path: str, doc_id: str | None, sha: str | None, size: int, mtime: float, status: str,
                 error: str | None = None) -> None: ...
    def drop_file(self, path: str) -> list[int]: ...

    # -- reads ------------------------------------------------------------------------------------------
    def file_row(self, path: str) -> dict[str, Any] | None: ...
    def files(self) -> list[dict[str, Any]]: ...
    def has_document(self, doc_id: str) -> bool: ...
    def documents(self) -> list[DocumentRow]: ...
    def doc_meta(self, doc_ids: Sequence[str] | None = None) -> dict[str, DocMeta]: ...
    def page(self, doc_id: str, number: int) -> dict[str, Any] | None: ...
    def page_texts(self, doc_id: str, number: int | None = None) -> dict[int, str]: ...
    def chunk_ids(self, doc_id: str | None = None, page: int | None = None, kind: str | None = None) -> list[int]: ...
    def get_chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]: ...
    def vector_ids(self, space: str) -> np.ndarray: ...
    def load_vectors(self, space: str, ids: Sequence[int], dimension: int) -> np.ndarray: ...
    def counts(self) -> dict[str, int]: ...

    # -- search -----------------------------------------------------------------------------------------
    def vector_search(self, space: str, vector: np.ndarray, k: int, filters: SearchFilters | None = None,
                      kinds: tuple[str, ...] = ()) -> list[int]: ...
    def lexical_search(self, query: str, k: int, filters: SearchFilters | None = None) -> list[tuple[int, float]]: ...
    def lexical_pages(self, query: str, k: int,
                      filters: SearchFilters | None = None) -> list[tuple[str, int, float]]: ...

    def replace_vectors(self, vectors: VectorRows, manifest: dict[str, Any]) -> None:
        """Reindex: every vector replaced, with the manifest naming their models, in one transaction of its own."""
        ...

    # -- upkeep -----------------------------------------------------------------------------------------
    def before_write(self) -> None: ...
    def after_write(self, ids: list[int], vectors: VectorRows, dropped: list[int]) -> None: ...
    def flush(self) -> None: ...
    def check(self) -> list[Any]: ...
