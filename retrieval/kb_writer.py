"""The KB writer: folder → knowledge base. Discover, skip what is unchanged, parse in the bounded parser pool
(`ingest.parser_pool`, overlapped with embedding), chunk and embed (`retrieval.embedding`), and commit each
document atomically."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ingest.chunking import Chunker
from ingest.discovery import discover
from ingest.errors import FileError, FileVanished
from ingest.hashing import file_sha256
from ingest.isolation import IsolatedParser
from ingest.parser_pool import ParseJob, ParseOutcome, ParserPool
from ingest.protocols import ParseOptions
from ingest.types import Chunk, FileResult, ParsedDocument, doc_id_for
from retrieval import faults
from retrieval.attachments import attachment_errors, attachment_name
from retrieval.embedding import Prepared, Vectors, chunker_for, embed_prepared, prepare_chunks
from retrieval.ingest_engine import IngestEngine, ReadyDocument
from retrieval.kb import KnowledgeBase
from retrieval.store.protocol import Store


@dataclass(frozen=True)
class Progress:
    files_done: int
    files_total: int
    pages_done: int
    path: str
    status: str


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    pruned: list[str] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, Any]:
        count = {s: sum(1 for f in self.files if f.status == s) for s in ("ingested", "unchanged", "failed", "skipped")}
        return {
            "files": len(self.files),
            **count,
            "pages": sum(f.pages for f in self.files if f.status == "ingested"),
            "chunks": sum(f.chunks for f in self.files if f.status == "ingested"),
            "figures": sum(f.figures for f in self.files if f.status == "ingested"),
            "empty": sum(1 for f in self.files if f.status == "ingested" and f.warning),
            "pruned": len(self.pruned),
            "seconds": round(self.seconds, 3),
        }

    def to_json(self) -> dict[str, Any]:
        return {"files": [f.to_json() for f in self.files], "totals": self.totals, "pruned": self.pruned}


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class StoredFile:
    """A file's row in the catalog: which document it holds, and what it was when it was read."""

    path: str
    doc_id: str
    sha256: str
    size: int
    mtime: float


def write_document(store: Store, file: StoredFile, doc: ParsedDocument, name: str,
                   chunks: Sequence[Chunk], meta: Sequence[dict[str, Any]],
                   vectors: Mapping[str, tuple[Sequence[int], np.ndarray]]) -> list[int]:
    """Put a document, its chunks and vectors (`space -> (chunk positions, matrix)`), and the file that holds it
    into the store, inside the caller's transaction; the chunk ids, in the order of `chunks`."""
    ids = store.put_document(doc, name, file.size, chunks, meta, vectors)
    store.put_file(file.path, file.doc_id, file.sha256, file.size, file.mtime, "ingested")
    return ids


def write_attachments(store: Store, file_name: str,
                      family: Sequence[tuple[ParsedDocument, Prepared, Vectors]]) -> list[list[int]]:
    """Put a file's attachment documents (`ingest.attachments`, parents first) after its own document, inside the
    caller's transaction: no file row holds them, their parent does (`retrieval.attachments`). Their chunk ids."""
    return [store.put_document(doc, attachment_name(file_name, doc), int(doc.metadata.get("attachment_bytes", 0)),
                               prepared.chunks, prepared.meta, vectors) for doc, prepared, vectors in family]


def merged_vectors(parts: Sequence[tuple[list[int], Vectors]]) -> tuple[list[int], Vectors]:
    """Several documents' chunk ids and vectors as one delta (one commit, one index update)."""
    ids: list[int] = []
    out: dict[str, tuple[list[int], list[np.ndarray]]] = {}
    for part_ids, vectors in parts:
        for space, (positions, matrix) in vectors.items():
            have = out.setdefault(space, ([], []))
            have[0].extend(len(ids) + p for p in positions)
            have[1].append(matrix)
        ids += part_ids
    return ids, {space: (pos, np.vstack(ms)) for space, (pos, ms) in out.items()}


class KBWriter:
    SAVE_EVERY_S = 20.0
    PARSE_AHEAD = 16  # files the parser worker may finish before the embedder takes them (parsed text is small)

    def __init__(self, kb: KnowledgeBase, passwords: Sequence[str] = (), progress: ProgressFn | None = None,
                 parser: IsolatedParser | None = None, engine: IngestEngine | None = None) -> None:
        kb._require_writable("ingest")
        self.engine = engine  # None: parse and embed here; else where the engine runs them (e.g. on Ray)
        self.kb = kb
        self.passwords = tuple(passwords)
        self.progress = progress or (lambda p: None)
        self.parser = parser or IsolatedParser(kb.settings.limits)
        # more parser processes only for our own kind; an injected parser is used alone
        self._workers = max(1, kb.settings.limits.workers) if parser is None else 1
        self._chunker: Chunker | None = None

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            self._chunker = chunker_for(self.kb.models)
        return self._chunker

    def run(self, paths: Sequence[str], prune: bool = False) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        found = list(discover(paths))
        todo: list[ParseJob] = []
        todo_shas: set[str] = set()
        duplicates: list[str] = []
        for path, supported in found:
            if not supported:
                report.files.append(FileResult(path, "skipped", error=f"unsupported file type '{Path(path).suffix}'"))
                continue
            checked = self._precheck(path)
            if isinstance(checked, FileResult):
                report.files.append(checked)
            elif checked.sha256 in todo_shas:
                duplicates.append(path)  # same content as a file parsed in this run: linked to it afterwards
            else:
                todo.append(checked)
                todo_shas.add(checked.sha256)
        self.progress(Progress(len(report.files), len(found), 0, "", "scanned"))
        pages_done = 0
        last_save = time.monotonic()
        try:
            for ready in self._documents(todo):
                t0 = time.perf_counter()
                result = self._store(ready)
                result = replace(result, seconds=round(time.perf_counter() - t0, 3))
                report.files.append(result)
                pages_done += result.pages
                self.progress(Progress(len(report.files), len(found), pages_done, ready.job.path, result.status))
                faults.point("between_documents")
                if time.monotonic() - last_save > self.SAVE_EVERY_S:
                    self.kb.save_indexes()
                    last_save = time.monotonic()
        finally:
            self.parser.close()
        for path in duplicates:
            checked = self._precheck(path)
            report.files.append(checked if isinstance(checked, FileResult)
                                else FileResult(path, "failed", error="the file it duplicates failed"))
        if prune:
            seen = {p for p, _ in found}
            roots = [str(Path(p).expanduser().resolve()) for p in paths]
            gone = [f["path"] for f in self.kb.store.files()
                    if f["path"] not in seen and any(f["path"] == r or f["path"].startswith(r.rstrip("/") + "/")
                                                     for r in roots)]
            report.pruned = self.kb.remove(gone) if gone else []
        self.kb.save_indexes()
        report.files.sort(key=lambda f: f.path)  # files finish in any order; the report reads by path
        report.seconds = time.perf_counter() - started
        return report

    # -- stages -----------------------------------------------------------------------------------------
    def _precheck(self, path: str) -> FileResult | ParseJob:
        """What is known of a file without parsing it (unchanged, or the same content as a stored document),
        else the job of parsing it."""
        try:
            return self._precheck_file(path)
        except FileNotFoundError:  # deleted between discovery and now: a per-file error, the run goes on
            return FileResult(path, "failed", error=str(FileVanished(path)))

    def _precheck_file(self, path: str) -> FileResult | ParseJob:
        st = os.stat(path)
        store = self.kb.store
        row = store.file_row(path)
        if row and row["status"] == "ingested" and row["size"] == st.st_size and row["mtime"] == st.st_mtime \
                and store.has_document(row["doc_id"]):
            return FileResult(path, "unchanged")
        sha = file_sha256(path)
        doc_id = doc_id_for(sha)
        if store.has_document(doc_id):
            gone: list[str] = []
            with store.transaction():
                if row and row["doc_id"] and row["doc_id"] != doc_id:
                    gone = self._drop_old(path)[1]
                store.put_file(path, doc_id, sha, st.st_size, st.st_mtime, "ingested")
            self._drop_assets(gone)
            return FileResult(path, "unchanged")
        return ParseJob(path, sha, st)

    def _documents(self, todo: list[ParseJob]) -> Iterator[ReadyDocument]:
        """Each file parsed, chunked and described (and embedded, by an engine), in the order they finish."""
        if self.engine is not None:
            return self.engine.documents(todo, self._parse_options(), self.kb.settings)
        return self._prepared(self._parsed(todo))

    def _parse_options(self) -> ParseOptions:
        settings = self.kb.settings
        return replace(settings.parse, assets_dir=str(self.kb.assets_dir), passwords=self.passwords,
                       ocr=settings.ocr, ocr_language=settings.ocr_language)

    def _parsed(self, todo: list[ParseJob]) -> Iterator[ParseOutcome]:
        """Parse in worker processes (`limits.workers`) while earlier files are embedded here."""
        pool = ParserPool(self.parser, self.kb.settings.limits, self._workers, self.PARSE_AHEAD)
        return pool.parse(todo, self._parse_options())

    def _prepared(self, parsed: Iterator[ParseOutcome]) -> Iterator[ReadyDocument]:
        """Chunk and describe figures (tagger, image model) in a thread, one document ahead of the text
        embedder: both models release the GIL, so the tagger's core is not idle while MiniLM runs."""

        def load() -> None:  # the text model and the chunker, built in this thread only (no race for them)
            _ = self.kb.models.text, self.chunker

        def prepare(outcome: ParseOutcome) -> ReadyDocument:
            if isinstance(outcome.result, FileError):
                return ReadyDocument(outcome.job, outcome.result)
            docs = (outcome.result, *outcome.attachments)
            ready = [(d, prepare_chunks(self.kb.models, self.kb.assets_dir, self.chunker.chunk(d))) for d in docs]
            return ReadyDocument(outcome.job, ready[0], attachments=tuple(ready[1:]))

        with ThreadPoolExecutor(max_workers=1) as pool:
            loaded = pool.submit(load)  # while the parser processes start and read the first file
            queue: list[Future[ReadyDocument]] = []
            for outcome in parsed:
                queue.append(pool.submit(prepare, outcome))
                if len(queue) > 1:
                    loaded.result()
                    yield queue.pop(0).result()
            loaded.result()  # a missing or corrupt model surfaces here, named
            for fut in queue:
                yield fut.result()

    def _store(self, ready: ReadyDocument) -> FileResult:
        store = self.kb.store
        path, sha, st, outcome = ready.job.path, ready.job.sha256, ready.job.stat, ready.result
        if isinstance(outcome, FileError):
            with store.transaction():
                gone = self._drop_old(path)[1]
                store.put_file(path, None, sha, st.st_size, st.st_mtime, "failed", str(outcome))
            self._drop_assets(gone)
            return FileResult(path, "failed", error=str(outcome))
        doc, prepared = outcome
        if ready.vectors is None:
            vectors = embed_prepared(self.kb.models, prepared, self.kb.register_space)
        else:
            vectors = ready.vectors
            for used in ready.spaces:
                self.kb.register_space(*used)
        if ready.attachment_vectors is None:
            attached_vectors = [embed_prepared(self.kb.models, p, self.kb.register_space) for _, p in ready.attachments]
        else:
            attached_vectors = list(ready.attachment_vectors)
        family = [(doc, prepared, vectors)] + [(d, p, v) for (d, p), v in zip(ready.attachments, attached_vectors,
                                                                               strict=True)]
        store.before_write()  # caches current before the commit, so its delta can be applied in memory
        with store.transaction():
            dropped, gone = self._drop_old(path)
            ids = write_document(store, StoredFile(path, doc.doc_id, sha, st.st_size, st.st_mtime), doc,
                                 Path(path).name, prepared.chunks, prepared.meta, vectors)
            attached = write_attachments(store, Path(path).name, family[1:])
        self._drop_assets([d for d in gone if d != doc.doc_id])
        store.after_write(*merged_vectors(list(zip([ids, *attached], [v for *_, v in family], strict=True))), dropped)
        chunks = [c for _, p, _ in family for c in p.chunks]
        figures = sum(1 for c in chunks if c.kind == "figure")
        return FileResult(path, "ingested", pages=sum(len(d.pages) for d, _, _ in family),
                          chunks=len(chunks) - figures, figures=figures,
                          warning=None if chunks else self._empty_reason(doc), attachments=len(family) - 1,
                          attachment_errors=attachment_errors(doc))

    def _empty_reason(self, doc: ParsedDocument) -> str:
        """Why a document that parsed cleanly gave nothing to search (XFA-only forms, blank or tiny pages)."""
        if not self.kb.settings.ocr and doc.kind in ("pdf", "image"):
            return "nothing searchable: no text layer and no figures; OCR is off (ingest with OCR to read scans)"
        return ("nothing searchable: no text, no readable scan and no figures on any page"
                " (e.g. an XFA-only form, blank pages, or an image too small to read)")

    def _drop_old(self, path: str) -> tuple[list[int], list[str]]:
        """Forget what `path` held, inside the caller's transaction: the vector ids dropped, and the documents
        whose assets may go once that transaction has committed (not before: a crash would roll the rows
        back and leave them pointing at deleted thumbnails and crops)."""
        store = self.kb.store
        row = store.file_row(path)
        dropped = store.drop_file(path) if row else []
        gone = row is not None and bool(row["doc_id"]) and not store.has_document(row["doc_id"])
        return dropped, [row["doc_id"]] if row and gone else []

    def _drop_assets(self, doc_ids: list[str]) -> None:
        for doc_id in doc_ids:
            self.kb.store.assets.remove(doc_id)
