"""Parsing a file that was shipped as bytes to another machine (a Ray worker), with the local isolation.

The machine that runs the ingest owns the files and the knowledge base; a cluster node owns neither. So the
driver reads a file and ships its bytes; the node writes them to a private temporary folder under the file's own
name, parses them in a bounded `IsolatedParser` process (the same time, memory and size bounds as a local
ingest), and ships back the document together with the thumbnails and crops the parser wrote. A mail's
attachments are staged in a private folder beside it and expanded as locally (`ingest.attachments.expand`: each
its own bounded parse request, a bad one listed under the message), and ship back with it: the whole family and
all its assets. Paths in the documents and in error messages are the driver's, so a report reads as a local one.

No Ray in here: the engine (`retrieval.ray_engine`) runs these functions as Ray tasks; tests run them directly.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ingest.attachments import expand
from ingest.errors import CorruptFile, FileError, ResourceLimit, UnsupportedFile
from ingest.isolation import IsolatedParser, Limits
from ingest.protocols import ParseOptions
from ingest.types import ParsedDocument

Assets = dict[str, bytes]  # path relative to the KB's assets folder -> the file's bytes

_KINDS: dict[str, type[FileError]] = {"CorruptFile": CorruptFile, "UnsupportedFile": UnsupportedFile,
                                      "ResourceLimit": ResourceLimit}


@dataclass(frozen=True)
class ShippedFile:
    """A file's bytes on their way to a node. `path` is where it lives on the driver."""

    path: str
    sha256: str
    data: bytes


@dataclass(frozen=True)
class ShippedError:
    """A per-file error that crossed machines: the kind of `FileError` and its message."""

    kind: str
    message: str

    def exception(self) -> FileError:
        return _KINDS.get(self.kind, FileError)(self.message)


@dataclass(frozen=True)
class ShippedParse:
    """What a node made of a shipped file: the document, its attachments' documents (every level, parents first,
    linked in their metadata as `ingest.attachments` links them) and all their assets; or the error that stopped
    it."""

    path: str
    sha256: str
    document: ParsedDocument | None
    assets: Assets
    error: ShippedError | None
    seconds: float
    node: str = ""  # where it was parsed (set by the engine that ran it)
    attachments: tuple[ParsedDocument, ...] = ()


_PARSERS: dict[Limits, IsolatedParser] = {}  # one bounded parser process per worker process, reused by its tasks


def parse_shipped(file: ShippedFile, options: ParseOptions, limits: Limits) -> ShippedParse:
    """Parse shipped bytes under `limits`; never raises for a bad file (the error is in the result)."""
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="citeline-ship-"))
    try:
        source = work / "in" / (os.path.basename(file.path) or "file")
        source.parent.mkdir()
        source.write_bytes(file.data)
        assets_dir, staging = work / "assets", work / "staging"  # staging: the attachments the parser saves
        assets_dir.mkdir()
        staging.mkdir()
        parser = _parser(limits)
        here = replace(options, assets_dir=str(assets_dir), staging_dir=str(staging))
        try:
            doc = parser.parse(str(source), file.sha256, here)
        except FileError as exc:
            error = ShippedError(type(exc).__name__, str(exc).replace(str(source), file.path))
            return ShippedParse(file.path, file.sha256, None, {}, error, time.perf_counter() - started)
        # the driver's path first: attachments are named after it ("inbox.eml › report.pdf")
        family = expand(replace(doc, path=file.path), parser.parse, here)
        return ShippedParse(file.path, file.sha256, family.document, read_assets(assets_dir), None,
                            time.perf_counter() - started, attachments=family.attachments)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _parser(limits: Limits) -> IsolatedParser:
    if limits not in _PARSERS:
        _PARSERS[limits] = IsolatedParser(limits)
    return _PARSERS[limits]


def close_parsers() -> None:
    """Stop this process's parser processes (they also end on their own when this process exits)."""
    while _PARSERS:
        _PARSERS.popitem()[1].close()


def read_assets(root: Path) -> Assets:
    """Every file under `root`, by its path relative to it."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_assets(root: Path, assets: Assets) -> None:
    """Put shipped assets under `root`; a path that would land outside it is refused (never trusted blindly)."""
    base = root.resolve()
    for relative, data in assets.items():
        target = (base / relative).resolve()
        if not target.is_relative_to(base) or target == base:
            raise CorruptFile(f"a worker sent an asset outside the assets folder: {relative!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
