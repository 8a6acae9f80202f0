"""Deterministic embedders for tests: no weights, no torch, milliseconds.

HashEmbedder sums one hash-seeded random vector per word, so texts sharing words land near each other.
HashImageEmbedder uses a downsampled grey thumbnail, so near-identical pictures land near each other.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from retrieval.errors import TextQueriesUnsupported
from retrieval.vectors import normalise

_WORD = re.compile(r"\w+")


def _seeded_vector(key: bytes, dimension: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
    return np.random.default_rng(seed).standard_normal(dimension).astype(np.float32)


class HashEmbedder:
    normalized = True
    max_tokens = 256

    def __init__(self, dimension: int = 64) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be positive, got {dimension}")
        self.dimension = dimension
        self.name = f"hash-{dimension}"
        self._cache: dict[str, np.ndarray] = {}

    def _word(self, word: str) -> np.ndarray:
        if word not in self._cache:
            self._cache[word] = _seeded_vector(word.encode(), self.dimension)
        return self._cache[word]

    def _one(self, text: str) -> np.ndarray:
        words = _WORD.findall(text.lower())
        if not words:  # still a unit vector, so every row is normalised
            return self._word("")
        return np.sum([self._word(w) for w in words], axis=0)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        return normalise(np.stack([self._one(t) for t in texts]))

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text)) + 2  # like [CLS] ... [SEP]


class HashImageEmbedder:
    supports_text_queries = False

    def __init__(self, side: int = 8) -> None:
        self.side = side
        self.dimension = side * side
        self.name = f"hash-image-{self.dimension}"

    def _one(self, path: str) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as im:
            grey = np.asarray(im.convert("L").resize((self.side, self.side)), np.float32).ravel()
        centred = grey - grey.mean()
        if np.linalg.norm(centred) < 1e-6:  # a flat picture: fall back to its bytes
            with open(path, "rb") as f:
                return _seeded_vector(f.read(), self.dimension)
        return centred

    def embed_images(self, paths: Sequence[str]) -> np.ndarray:
        if not paths:
            return np.zeros((0, self.dimension), np.float32)
        return normalise(np.stack([self._one(p) for p in paths]))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise TextQueriesUnsupported(self.name)
