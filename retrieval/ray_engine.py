"""Distributed ingestion on a Ray cluster: parse as Ray tasks, embed in an actor pool, commit on the driver.

    citeline ingest DOCS --kb KB --engine ray://HOST:PORT      (HOST:PORT: the cluster's GCS, `ray start --head`)
    Citeline("KB").ingest("DOCS", engine="ray://HOST:PORT")

The driver (this process) owns the files and the KB: it discovers and skips unchanged files, reads each
remaining file and ships its bytes; a Ray task parses them under the local per-file bounds (`ingest.shipping`:
an `IsolatedParser` process with the time, memory and size bounds; a mail's attachments each in a bounded
request of their own, as locally); an embedding actor (`retrieval.remote_embed`, models loaded once per actor,
one actor per node by default) chunks and embeds the document and its attachments; the driver writes the
returned thumbnails and crops and the KB writer commits the family, with the shipped vectors, in one
transaction. Nothing but the package needs to be on the nodes (every node runs `pip install 'citeline[ray]'` of
the same version, and tesseract for OCR); no shared file system is assumed. Passwords travel to the workers
inside the task arguments.

A worker or node that dies takes only its in-flight files: each is shipped again (`attempts` times in all), then
reported as a per-file error; everything committed before stays, and a re-run completes the rest.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ingest.errors import MissingDependency
from ingest.parser_pool import ParseJob
from ingest.protocols import ParseOptions
from retrieval.errors import EngineError
from retrieval.ingest_engine import ReadyDocument
from retrieval.settings import KBSettings

INSTALL = "pip install 'citeline[ray]'"


@dataclass(frozen=True)
class RaySettings:
    """Where the cluster is and how much of it one ingest uses."""

    address: str  # HOST:PORT of the cluster's GCS
    embedders: int | None = None  # embedding actors; default one per alive node (SPREAD across nodes)
    embedder_cpus: float = 1.0
    parser_cpus: float = 1.0
    attempts: int = 3  # tries per file when the worker or node handling it dies
    in_flight: int | None = None  # files shipped and not yet committed; default 2 per CPU of the cluster
    max_bytes_in_flight: int = 512 * 1024**2  # file bytes shipped and not yet committed (one big file may pass)
    connect_timeout_s: float = 60.0
    ready_timeout_s: float = 600.0  # actors loading their models (the first load on a node derives the int8 model)
    stall_timeout_s: float = 900.0  # no file finished parsing or embedding for this long: the run stops, named
    task_timeout_s: float = 600.0  # one file's parse or embed call in flight this long is lost work: shipped again

    def __post_init__(self) -> None:
        if self.attempts < 1 or (self.embedders is not None and self.embedders < 1):
            raise ValueError("attempts and embedders must be at least 1")

    @classmethod
    def from_uri(cls, uri: str) -> RaySettings:
        """`ray://HOST:PORT[?embedders=N&attempts=N&in_flight=N&embedder_cpus=X&parser_cpus=X&stall_timeout_s=X
        &task_timeout_s=X]`."""
        parts = urlsplit(uri)
        if parts.scheme != "ray" or not parts.hostname or not parts.port:
            raise ValueError(f"{uri!r}: a Ray engine is ray://HOST:PORT (the address `ray start --head` printed)")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        ints = {k: int(query.pop(k)) for k in ("embedders", "attempts", "in_flight") if k in query}
        floats = {k: float(query.pop(k)) for k in ("embedder_cpus", "parser_cpus", "stall_timeout_s", "task_timeout_s")
                  if k in query}
        if query:
            raise ValueError(f"{uri!r}: unknown option(s) {', '.join(sorted(query))}")
        return cls(f"{parts.hostname}:{parts.port}", **ints, **floats)  # type: ignore[arg-type]


@dataclass
class RayStats:
    """Where one Ray ingest spent its time (summed over files; workers run in parallel, so sums exceed wall)."""

    files: int = 0
    retried: int = 0
    lost: int = 0  # files reported failed after `attempts` tries
    connect_s: float = 0.0
    ready_s: float = 0.0  # until every embedding actor had its models
    read_s: float = 0.0  # the driver reading files to ship
    parse_s: float = 0.0  # in the parser processes on the nodes
    embed_s: float = 0.0  # chunking, figure description and embedding in the actors
    fetch_s: float = 0.0  # the driver fetching results and writing assets
    wall_s: float = 0.0
    parsed_on: dict[str, int] = field(default_factory=dict)
    embedded_on: dict[str, int] = field(default_factory=dict)


def import_ray() -> Any:
    """Ray, or the exact install command."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependency("Ray (the distributed ingest engine)", INSTALL) from exc
    return ray


_CONNECTED: list[str] = []  # the address this process is connected to (Ray allows one cluster per process)


def connect(address: str, timeout_s: float) -> Any:
    """Join the cluster at `address` as a driver (once per process; another address reconnects)."""
    ray = import_ray()
    if ray.is_initialized() and [address] == _CONNECTED:
        return ray
    if ray.is_initialized():
        ray.shutdown()
    _probe(address, min(timeout_s, 10.0))  # Ray itself retries an unreachable address for minutes
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a driver never reports usage statistics
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, namespace="citeline",
                 configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise EngineError(f"cannot join the Ray cluster at {address} ({exc}); start it with `ray start --head "
                          f"--port PORT` and pass --engine ray://HOST:PORT, or ingest without --engine") from exc
    _CONNECTED[:] = [address]
    return ray


def _probe(address: str, timeout_s: float) -> None:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise EngineError(f"no Ray cluster answers at {address} ({exc.strerror or exc}): start one with `ray start "
                          "--head --port PORT` and pass --engine ray://HOST:PORT, or ingest without --engine") from None


class RayEngine:
    """The `retrieval.ingest_engine.IngestEngine` on a Ray cluster."""

    def __init__(self, settings: RaySettings) -> None:
        self.settings = settings
        self.last_stats = RayStats()

    def documents(self, jobs: Sequence[ParseJob], options: ParseOptions,
                  settings: KBSettings) -> Iterator[ReadyDocument]:
        from retrieval.ray_run import RayRun

        self.last_stats = stats = RayStats()
        if not jobs:
            return
        started = time.perf_counter()
        ray = connect(self.settings.address, self.settings.connect_timeout_s)
        stats.connect_s = time.perf_counter() - started
        run = RayRun(ray, self.settings, options, settings, stats)
        try:
            yield from run.results(jobs)
        finally:
            run.close()
            stats.wall_s = time.perf_counter() - started
