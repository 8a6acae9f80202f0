"""Folder → knowledge base: discover, skip what is unchanged, parse in a bounded worker (overlapped with
embedding), chunk, describe figures, embed, and commit each document atomically."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from queue import SimpleQueue
from typing import Any

import numpy as np

from ingest.chunking import Chunker, embedding_text
from ingest.discovery import discover
from ingest.errors import FileError, FileVanished
from ingest.isolation import IsolatedParser
from ingest.protocols import ParseOptions
from ingest.types import Chunk, FileResult, ParsedDocument, doc_id_for, file_sha256
from retrieval import faults
from retrieval.kb import IMAGE, TEXT, KnowledgeBase


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


class Ingestor:
    SAVE_EVERY_S = 20.0
    PARSE_AHEAD = 16  # files the parser worker may finish before the embedder takes them (parsed text is small)

    def __init__(self, kb: KnowledgeBase, passwords: Sequence[str] = (), progress: ProgressFn | None = None,
                 parser: IsolatedParser | None = None) -> None:
        kb._require_writable("ingest")
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
            model = self.kb.models.text
            self._chunker = Chunker(model.count_tokens, self.kb.settings.chunker,
                                    getattr(model, "count_tokens_many", None))
        return self._chunker

    def run(self, paths: Sequence[str], prune: bool = False) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        found = list(discover(paths))
        todo: list[tuple[str, str, os.stat_result]] = []
        todo_shas: set[str] = set()
        duplicates: list[str] = []
        for path, supported in found:
            if not supported:
                report.files.append(FileResult(path, "skipped", error=f"unsupported file type '{Path(path).suffix}'"))
                continue
            result, sha, st = self._precheck(path)
            if result is not None:
                report.files.append(result)
            elif sha in todo_shas:
                duplicates.append(path)  # same content as a file parsed in this run: linked to it afterwards
            else:
                todo.append((path, sha, st))
                todo_shas.add(sha)
        self.progress(Progress(len(report.files), len(found), 0, "", "scanned"))
        pages_done = 0
        last_save = time.monotonic()
        try:
            for path, sha, st, outcome in self._prepared(self._parsed(todo)):
                t0 = time.perf_counter()
                result = self._store(path, sha, st, outcome)
                result = FileResult(**{**result.to_json(), "seconds": round(time.perf_counter() - t0, 3)})
                report.files.append(result)
                pages_done += result.pages
                self.progress(Progress(len(report.files), len(found), pages_done, path, result.status))
                faults.point("between_documents")
                if time.monotonic() - last_save > self.SAVE_EVERY_S:
                    self.kb.save_indexes()
                    last_save = time.monotonic()
        finally:
            self.parser.close()
        for path in duplicates:
            result, _, _ = self._precheck(path)
            report.files.append(result or FileResult(path, "failed", error="the file it duplicates failed"))
        if prune:
            seen = {p for p, _ in found}
            roots = [str(Path(p).expanduser().resolve()) for p in paths]
            gone = [f["path"] for f in self.kb.catalog.files()
                    if f["path"] not in seen and any(f["path"] == r or f["path"].startswith(r.rstrip("/") + "/")
                                                     for r in roots)]
            report.pruned = self.kb.remove(gone) if gone else []
        self.kb.save_indexes()
        report.files.sort(key=lambda f: f.path)  # files finish in any order; the report reads by path
        report.seconds = time.perf_counter() - started
        return report

    # -- stages -----------------------------------------------------------------------------------------
    def _precheck(self, path: str) -> tuple[FileResult | None, str, os.stat_result]:
        try:
            return self._precheck_file(path)
        except FileNotFoundError:  # deleted between discovery and now: a per-file error, the run goes on
            return FileResult(path, "failed", error=str(FileVanished(path))), "", os.stat_result((0,) * 10)

    def _precheck_file(self, path: str) -> tuple[FileResult | None, str, os.stat_result]:
        st = os.stat(path)
        row = self.kb.catalog.file_row(path)
        if row and row["status"] == "ingested" and row["size"] == st.st_size and row["mtime"] == st.st_mtime \
                and self.kb.catalog.has_document(row["doc_id"]):
            return FileResult(path, "unchanged"), row["sha256"], st
        sha = file_sha256(path)
        doc_id = doc_id_for(sha)
        if self.kb.catalog.has_document(doc_id):
            gone: list[str] = []
            with self.kb.catalog.transaction() as db:
                if row and row["doc_id"] and row["doc_id"] != doc_id:
                    gone = self._drop_old(db, path)[1]
                self.kb.catalog.put_file(db, path, doc_id, sha, st.st_size, st.st_mtime, "ingested")
            self._drop_assets(gone)
            return FileResult(path, "unchanged"), sha, st
        return None, sha, st

    def _parsed(self, todo: list[tuple[str, str, os.stat_result]]) -> Iterator[tuple[str, str, os.stat_result, Any]]:
        """Parse in worker processes (`limits.workers`) while earlier files are embedded here; results come in
        the order they finish, at most PARSE_AHEAD of them waiting.

        One worker takes files smallest first, so the embedder (the bottleneck on 2 cores) starts at once; the
        other takes them largest first, so the biggest file is not left to parse alone at the end."""
        options = ParseOptions(assets_dir=str(self.kb.assets_dir), passwords=self.passwords, ocr=self.kb.settings.ocr,
                               ocr_language=self.kb.settings.ocr_language)
        workers = [self.parser] + [IsolatedParser(self.kb.settings.limits)
                                   for _ in range(min(self._workers, len(todo)) - 1)]
        pending = deque(sorted(todo, key=lambda t: t[2].st_size))
        lock, stop, room = threading.Lock(), threading.Event(), threading.Semaphore(self.PARSE_AHEAD)
        done: SimpleQueue[tuple[tuple[str, str, os.stat_result], Any, bool] | None] = SimpleQueue()

        def work(worker: IsolatedParser, smallest_first: bool) -> None:
            try:
                while True:
                    room.acquire()
                    with lock:
                        if stop.is_set() or not pending:
                            return
                        item = pending.popleft() if smallest_first else pending.pop()
                    try:
                        done.put((item, worker.parse(item[0], item[1], options), False))
                    except FileError as exc:
                        done.put((item, exc, False))
                    except BaseException as exc:  # a bug, not a bad file: the consumer re-raises it
                        done.put((item, exc, True))
                        return
            finally:
                done.put(None)

        threads = [threading.Thread(target=work, args=(w, i % 2 == 0), daemon=True, name=f"citeline-parse-{i}")
                   for i, w in enumerate(workers)]
        for thread in threads:
            thread.start()
        running = len(threads)
        try:
            while running:
                got = done.get()
                if got is None:
                    running -= 1
                    continue
                (path, sha, st), outcome, crashed = got
                room.release()
                if crashed:
                    raise outcome
                yield path, sha, st, outcome
        finally:
            stop.set()
            for _ in threads:
                room.release()  # wake any worker thread waiting for room, so it sees `stop`
            for worker in workers[1:]:
                worker.close()

    def _prepared(self, parsed: Iterator[tuple[str, str, os.stat_result, Any]]
                  ) -> Iterator[tuple[str, str, os.stat_result, Any]]:
        """Chunk and describe figures (tagger, image model) in a thread, one document ahead of the text
        embedder: both models release the GIL, so the tagger's core is not idle while MiniLM runs."""

        def load() -> None:  # the text model and the chunker, built in this thread only (no race for them)
            _ = self.kb.models.text, self.chunker

        def prepare(outcome: ParsedDocument | FileError) -> tuple[ParsedDocument, Prepared] | FileError:
            if isinstance(outcome, FileError):
                return outcome
            return outcome, prepare_chunks(self.kb, self.chunker.chunk(outcome))

        with ThreadPoolExecutor(max_workers=1) as pool:
            loaded = pool.submit(load)  # while the parser processes start and read the first file
            queue: list[tuple[str, str, os.stat_result, Future[Any]]] = []
            for path, sha, st, outcome in parsed:
                queue.append((path, sha, st, pool.submit(prepare, outcome)))
                if len(queue) > 1:
                    loaded.result()
                    path, sha, st, fut = queue.pop(0)
                    yield path, sha, st, fut.result()
            loaded.result()  # a missing or corrupt model surfaces here, named
            for path, sha, st, fut in queue:
                yield path, sha, st, fut.result()

    def _store(self, path: str, sha: str, st: os.stat_result,
               outcome: tuple[ParsedDocument, Prepared] | FileError) -> FileResult:
        catalog = self.kb.catalog
        if isinstance(outcome, FileError):
            with catalog.transaction() as db:
                gone = self._drop_old(db, path)[1]
                catalog.put_file(db, path, None, sha, st.st_size, st.st_mtime, "failed", str(outcome))
            self._drop_assets(gone)
            return FileResult(path, "failed", error=str(outcome))
        doc, prepared = outcome
        chunks, meta = prepared.chunks, prepared.meta
        vectors = embed_prepared(self.kb, prepared)
        for space in self.kb.spaces():
            self.kb.index(space)  # current before the commit, so the commit's delta can be applied in memory
        with catalog.transaction() as db:
            dropped, gone = self._drop_old(db, path)
            ids = catalog.put_document(db, doc, Path(path).name, st.st_size, chunks, meta, vectors)
            catalog.put_file(db, path, doc.doc_id, sha, st.st_size, st.st_mtime, "ingested")
        self._drop_assets([d for d in gone if d != doc.doc_id])
        self._update_indexes(ids, vectors, dropped)
        figures = sum(1 for c in chunks if c.kind == "figure")
        return FileResult(path, "ingested", pages=len(doc.pages), chunks=len(chunks) - figures, figures=figures,
                          warning=None if chunks else self._empty_reason(doc))

    def _empty_reason(self, doc: ParsedDocument) -> str:
        """Why a document that parsed cleanly gave nothing to search (XFA-only forms, blank or tiny pages)."""
        if not self.kb.settings.ocr and doc.kind in ("pdf", "image"):
            return "nothing searchable: no text layer and no figures; OCR is off (ingest with OCR to read scans)"
        return ("nothing searchable: no text, no readable scan and no figures on any page"
                " (e.g. an XFA-only form, blank pages, or an image too small to read)")

    def _drop_old(self, db: Any, path: str) -> tuple[list[int], list[str]]:
        """Forget what `path` held, inside the caller's transaction: the vector ids dropped, and the documents
        whose assets may go once that transaction has committed (not before: a crash would roll the rows
        back and leave them pointing at deleted thumbnails and crops)."""
        row = self.kb.catalog.file_row(path)
        dropped = self.kb.catalog.drop_file(db, path) if row else []
        gone = row is not None and bool(row["doc_id"]) and not self.kb.catalog.has_document(row["doc_id"])
        return dropped, [row["doc_id"]] if row and gone else []

    def _drop_assets(self, doc_ids: list[str]) -> None:
        for doc_id in doc_ids:
            shutil.rmtree(self.kb.assets_dir / doc_id, ignore_errors=True)

    def _update_indexes(self, ids: list[int], vectors: dict[str, tuple[list[int], np.ndarray]],
                        dropped: list[int]) -> None:
        generation = self.kb.catalog.generation
        for space in self.kb.spaces():
            positions, matrix = vectors.get(space, ([], np.zeros((0, 1), dtype=np.float32)))
            self.kb.apply_delta(space, generation, [ids[p] for p in positions], matrix, dropped)


@dataclass
class Prepared:
    """A document's chunks with their figure descriptions and image vectors, ready for the text embedder."""

    chunks: list[Chunk]
    meta: list[dict[str, Any]]
    texts: list[str]
    image: tuple[list[int], np.ndarray] | None


def prepare_chunks(kb: KnowledgeBase, chunks: list[Chunk]) -> Prepared:
    """Describe figures (tags) and embed their pixels; build what the text embedder will see. Thread-safe
    beside `embed_prepared` (the tagger serves tags and features from one forward pass)."""
    models = kb.models
    meta: list[dict[str, Any]] = [{} for _ in chunks]
    fig_pos = [i for i, c in enumerate(chunks) if c.kind == "figure" and c.figure_path]
    fig_paths = [str(kb.assets_dir / (chunks[i].figure_path or "")) for i in fig_pos]
    tagger = models.tagger
    if tagger is not None and fig_paths:
        for i, tags in zip(fig_pos, _per_image(tagger.tag, fig_paths, []), strict=True):
            meta[i]["tags"] = ", ".join(label for label, p in tags if p >= 0.05)
    image: tuple[list[int], np.ndarray] | None = None
    image_model = models.image
    if image_model is not None and fig_paths:
        rows = _per_image(image_model.embed_images, fig_paths, None)
        keep = [k for k, row in enumerate(rows) if row is not None]
        image = ([fig_pos[k] for k in keep], np.asarray([rows[k] for k in keep], dtype=np.float32).reshape(
            len(keep), image_model.dimension))
    texts = [_text_to_embed(c, m) for c, m in zip(chunks, meta, strict=True)]
    return Prepared(chunks, meta, texts, image)


def embed_prepared(kb: KnowledgeBase, prepared: Prepared) -> dict[str, tuple[list[int], np.ndarray]]:
    """Embed the chunks' text; register the spaces the vectors belong to."""
    vectors: dict[str, tuple[list[int], np.ndarray]] = {}
    if prepared.chunks:
        text_model = kb.models.text
        kb.register_space(TEXT, kb.settings.text_model or text_model.name, text_model.dimension)
        vectors[TEXT] = (list(range(len(prepared.chunks))),
                         np.asarray(text_model.embed(prepared.texts), dtype=np.float32))
    # the image model is touched only when figures were described (then the preparing thread has built it)
    image_model = kb.models.image if prepared.image is not None else None
    if prepared.image is not None and image_model is not None:
        kb.register_space(IMAGE, kb.settings.image_model or image_model.name, image_model.dimension)
        if prepared.image[0]:
            vectors[IMAGE] = prepared.image
    return vectors


def embed_chunks(kb: KnowledgeBase, chunks: list[Chunk]) -> tuple[list[dict[str, Any]],
                                                                  dict[str, tuple[list[int], np.ndarray]]]:
    """Describe figures (tags), embed every chunk's text and every figure's pixels. Registers spaces."""
    prepared = prepare_chunks(kb, chunks)
    return prepared.meta, embed_prepared(kb, prepared)


def _text_to_embed(chunk: Chunk, meta: dict[str, Any]) -> str:
    """What the text embedder sees: the chunk with its section, and a figure's ImageNet tags."""
    tags = meta.get("tags")
    return embedding_text(chunk) + (f"\nImage shows: {tags}" if tags else "")


def _per_image(fn: Callable[[list[str]], Any], paths: list[str], failed: Any) -> list[Any]:
    """Run a batch image model; if one unreadable crop breaks the batch, retry one by one and mark failures."""
    try:
        return list(fn(paths))
    except Exception:
        out = []
        for path in paths:
            try:
                out.append(list(fn([path]))[0])
            except Exception:
                out.append(failed)
        return out


def embed_stored_chunks(kb: KnowledgeBase, spaces: dict[str, Any],
                        progress: Callable[[int, int], None] | None = None) -> dict[str, tuple[list[int], np.ndarray]]:
    """Embed every chunk in the catalog with the KB's configured models (for reindex). Fills `spaces`."""
    from retrieval.kb import _space_info

    all_ids = [r[0] for r in kb.catalog.db.execute("SELECT id FROM chunks ORDER BY id")]
    out: dict[str, tuple[list[int], list[np.ndarray]]] = {}
    for start in range(0, len(all_ids), 256):
        stored = kb.catalog.get_chunks(all_ids[start : start + 256])
        batch = [stored[i] for i in all_ids[start : start + 256] if i in stored]
        texts = [_text_to_embed(s.chunk, s.meta) for s in batch]
        text_model = kb.models.text
        spaces[TEXT] = _space_info(kb.settings.text_model or text_model.name, text_model.dimension)
        ids, mats = out.setdefault(TEXT, ([], []))
        ids.extend(s.id for s in batch)
        mats.append(np.asarray(text_model.embed(texts), dtype=np.float32))
        figs = [s for s in batch if s.chunk.kind == "figure" and s.chunk.figure_path]
        image_model = kb.models.image
        if figs and image_model is not None:
            spaces[IMAGE] = _space_info(kb.settings.image_model or image_model.name, image_model.dimension)
            rows = _per_image(image_model.embed_images, [str(kb.assets_dir / (s.chunk.figure_path or ""))
                                                         for s in figs], None)
            kept = [(s.id, row) for s, row in zip(figs, rows, strict=True) if row is not None]
            if kept:
                ids, mats = out.setdefault(IMAGE, ([], []))
                ids.extend(i for i, _ in kept)
                mats.append(np.asarray([row for _, row in kept], dtype=np.float32))
        if progress:
            progress(min(start + 256, len(all_ids)), len(all_ids))
    return {space: (ids, np.concatenate(mats)) for space, (ids, mats) in out.items()}
