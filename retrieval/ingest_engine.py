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
from typing import TYPE_CHECKING, Protocol

from ingest.parser_pool import ParseJob
from ingest.protocols import ParseOptions
from retrieval.settings import KBSettings

if TYPE_CHECKING:
    from retrieval.kb_writer import ReadyDocument

ENGINES = ("local", "ray://HOST:PORT")


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
