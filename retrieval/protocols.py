"""The embedding seams: text in or images in, float32 L2-normalised rows out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class TextEmbedder(Protocol):
    name: str
    dimension: int
    normalized: bool
    max_tokens: int  # the model's maximum sequence length, special tokens included

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape (len(texts), dimension), rows L2-normalised, in input order."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model's own tokenizer makes of `text` (special tokens included, no truncation)."""
        ...


@runtime_checkable
class ImageEmbedder(Protocol):
    name: str
    dimension: int
    supports_text_queries: bool  # True when embed_texts lands in the same space as embed_images (CLIP)

    def embed_images(self, paths: Sequence[str]) -> np.ndarray: ...

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Raises TextQueriesUnsupported unless supports_text_queries."""
        ...


@runtime_checkable
class ImageTagger(Protocol):
    name: str

    def tag(self, paths: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Per image, the top-k (label, probability) pairs, most probable first."""
        ...
