"""The embedding stage for documents parsed on another machine: chunk, describe figures, embed.

`EmbedWorker` builds the KB's models once (a Ray actor holds one for its whole life) and turns a `ShippedParse`
into an `EmbeddedDocument` with exactly the functions a local ingest uses (`chunker_for`, `prepare_chunks`,
`embed_prepared`), so a document's chunks and vectors do not depend on where it was embedded. A mail's
attachments (shipped with it) are chunked and embedded the same way, each a document of its own. Figures are
read from a private temporary copy of the shipped assets. No Ray in here (`retrieval.ray_engine` wraps it).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.chunking import Chunker
from ingest.shipping import Assets, ShippedError, ShippedParse, write_assets
from ingest.types import Chunk, ParsedDocument
from retrieval.embedding import Vectors, chunker_for, embed_prepared, prepare_chunks
from retrieval.settings import KBSettings, ModelSet

SpaceUse = tuple[str, str, int]  # (space, model name, dimension) as `KnowledgeBase.register_space` takes it


@dataclass(frozen=True)
class EmbeddedAttachment:
    """One attachment's document of a shipped file, chunked and embedded like the file's own."""

    document: ParsedDocument
    chunks: list[Chunk]
    meta: list[dict[str, Any]]
    vectors: Vectors


@dataclass(frozen=True)
class EmbeddedDocument:
    """A shipped file chunked and embedded, with its attachments (parents first) and the assets the driver must
    store (theirs included); or its per-file error."""

    path: str
    sha256: str
    document: ParsedDocument | None
    chunks: list[Chunk] = field(default_factory=list)
    meta: list[dict[str, Any]] = field(default_factory=list)
    vectors: Vectors = field(default_factory=dict)
    spaces: tuple[SpaceUse, ...] = ()
    assets: Assets = field(default_factory=dict)
    error: ShippedError | None = None
    parse_seconds: float = 0.0
    embed_seconds: float = 0.0
    node: str = ""  # where it was embedded
    parsed_on: str = ""
    attachments: tuple[EmbeddedAttachment, ...] = ()


@dataclass(frozen=True)
class WorkerInfo:
    """Who answered: the node, the package version (every node must run the driver's), the text model."""

    node: str
    version: str
    text_model: str


class EmbedWorker:
    """Holds a KB's models (loaded once) and embeds documents one at a time."""

    def __init__(self, settings: KBSettings, node: str = "") -> None:
        self.models = ModelSet(settings)
        self.node = node or f"{socket.gethostname()}:{os.getpid()}"
        self._chunker: Chunker | None = None

    def ready(self) -> WorkerInfo:
        """Load the models now (a missing or corrupt one fails here, named), and say who this is."""
        from retrieval.kb import VERSION

        text = self.models.text
        _ = self.models.image, self.chunker
        return WorkerInfo(self.node, VERSION, getattr(text, "name", ""))

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            self._chunker = chunker_for(self.models)
        return self._chunker

    def embed(self, parsed: ShippedParse) -> EmbeddedDocument:
        if parsed.document is None:  # a per-file error: passed through, nothing to embed
            return EmbeddedDocument(parsed.path, parsed.sha256, None, error=parsed.error,
                                    parse_seconds=parsed.seconds, node=self.node,
                                    parsed_on=parsed.node)
        started = time.perf_counter()
        spaces: list[SpaceUse] = []

        def register(space: str, model: str, dimension: int) -> None:
            if (space, model, dimension) not in spaces:  # once each, in the order a local ingest registers them
                spaces.append((space, model, dimension))

        work = Path(tempfile.mkdtemp(prefix="citeline-embed-"))
        try:
            write_assets(work, parsed.assets)
            family = []
            for doc in (parsed.document, *parsed.attachments):
                prepared = prepare_chunks(self.models, work, self.chunker.chunk(doc))
                family.append(EmbeddedAttachment(doc, prepared.chunks, prepared.meta,
                                                 embed_prepared(self.models, prepared, register)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        own = family[0]
        return EmbeddedDocument(parsed.path, parsed.sha256, parsed.document, own.chunks, own.meta,
                                own.vectors, tuple(spaces), parsed.assets, None, parsed.seconds,
                                time.perf_counter() - started, self.node, parsed.node, tuple(family[1:]))
