"""The ingest-engine seam: where files are parsed and embedded while the KB writer commits them.

`None` (the default, `local`) is the writer's own parser processes and embedder. An engine takes the files the
writer could not skip (discovery and the incremental check always run on the writer's machine, so nothing
unchanged is ever shipped) and yields each as a `ReadyDocument` with its vectors, in the order they finish;
the writer stays the single writer and commits one document per transaction, as locally.

    build_engine("local")                 -> None
    build_engine("ray://HOST:PORT")       -> RayEngine (the Ray cluster whose GCS listens there)
    build_engine("ray://HOST:PORT?embedders=4&attempts=3")
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ingest.errors import FileError
from ingest.parser_pool import ParseJob
from ingest.protocols import ParseOptions
from ingest.types import ParsedDocument
from retrieval.embedding import Prepared, Vectors
from retrieval.settings import KBSettings

ENGINES = ("local", "ray://HOST:PORT")


@dataclass(frozen=True)
class ReadyDocument:
    """A parsed file chunked and described, ready for the text embedder; or the error that stopped it."""

    job: ParseJob
    result: tuple[ParsedDocument, Prepared] | FileError
    # set by an engine that embeds elsewhere (`retrieval.ingest_engine`): the vectors, and the spaces they use
    vectors: Vectors | None = None
    spaces: tuple[tuple[str, str, int], ...] = ()
    attachments: tuple[tuple[ParsedDocument, Prepared], ...] = ()  # its attachments' documents, parents first
    # set with `vectors` by such an engine: each attachment's vectors, in the order of `attachments`
    attachment_vectors: tuple[Vectors, ...] | None = None



class IngestEngine(Protocol):
    def documents(self, jobs: Sequence[ParseJob], options: ParseOptions,
                  settings: KBSettings) -> Iterator[ReadyDocument]: ...


def build_engine(spec: str | None) -> IngestEngine | None:
    """The engine a spec names (`--engine`); ValueError with the accepted forms for anything else."""
    if spec is None or spec in ("", "local"):
        return None
    if spec.startswith("ray://"):
        from retrieval.ray_engine import RayEngine, RaySettings

        return RayEngine(RaySettings.from_uri(spec))
    raise ValueError(f"unknown ingest engine {spec!r}: use one of {', '.join(ENGINES)}")
