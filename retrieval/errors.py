"""The retrieval stage's errors: the knowledge base, search, and the embedders and their model files.

Every message says what went wrong and what to do about it. The base class and the per-file errors of
ingestion live in `ingest.errors`; the assistant's in `assistant.errors`, which also re-exports the whole tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ingest.errors import CitelineError


class KBError(CitelineError):
    """The knowledge base cannot be opened or written as asked."""


class KBLocked(KBError):
    pass


class EmbedderMismatch(KBError):
    pass


class SearchError(CitelineError, ValueError):
    """A search was asked for something it cannot do (no query, unknown retriever, bad level)."""


class TextQueriesUnsupported(CitelineError, NotImplementedError):
    """An image embedder without a text tower was asked to embed a text query."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"image embedder {name!r} cannot embed text queries; search images by their tags and captions, "
            "or use a CLIP embedder (--image-embedder clip:ViT-B-32:openai, needs pip install 'citeline[clip]')"
        )


class UnknownEmbedder(CitelineError, ValueError):
    def __init__(self, spec: str, choices: Sequence[str]) -> None:
        super().__init__(f"unknown embedder {spec!r}; choose one of: {', '.join(choices)}")


class EmbedderChecksumError(CitelineError):
    """An embedder's or tagger's weight file on disk is not the one this version of Citeline was built and
    tested against."""

    def __init__(self, path: Path, expected: str, actual: str, fix: str) -> None:
        super().__init__(
            f"{path} has sha256 {actual}, expected {expected}: the file is corrupt or a different "
            f"version; {fix}"
        )


class EngineError(CitelineError):
    """An ingest engine (e.g. a Ray cluster) could not be reached or cannot run the ingest as configured."""
