"""A pool of bounded parser processes (`ingest.isolation`) fed from one queue of files, so parsing overlaps
whatever the caller does with each document (chunking and embedding, in the KB writer). A file's attachments
(`ingest.attachments`) are parsed by the same worker, each in its own bounded request, before it is handed on."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from queue import SimpleQueue

from ingest.attachments import Family, expand
from ingest.errors import FileError
from ingest.isolation import IsolatedParser, Limits
from ingest.protocols import ParseOptions
from ingest.types import ParsedDocument


@dataclass(frozen=True)
class ParseJob:
    """A file to parse: its path, its content hash and what `os.stat` said of it when it was checked."""

    path: str
    sha256: str
    stat: os.stat_result


@dataclass(frozen=True)
class ParseOutcome:
    """A job with its result: the parsed document, or the per-file error that stopped it; and the documents of
    its attachments (every level, parents first), each linked to its parent in its metadata."""

    job: ParseJob
    result: ParsedDocument | FileError
    attachments: tuple[ParsedDocument, ...] = ()


class ParserPool:
    """`first` plus up to `workers - 1` parsers of its own kind; the extra ones are closed after each run."""

    def __init__(self, first: IsolatedParser, limits: Limits, workers: int, ahead: int) -> None:
        self.first = first
        self.limits = limits
        self.workers = max(1, workers)
        self.ahead = ahead  # files the parsers may finish before the consumer takes them (parsed text is small)

    def close(self) -> None:
        self.first.close()

    def parse(self, jobs: Sequence[ParseJob], options: ParseOptions) -> Iterator[ParseOutcome]:
        """Parse in worker processes while the consumer works on earlier files; results come in the order they
        finish, at most `ahead` of them waiting.

        One worker takes files smallest first, so the consumer (the embedder, the bottleneck on 2 cores) starts
        at once; the other takes them largest first, so the biggest file is not left to parse alone at the end."""
        parsers = [self.first] + [IsolatedParser(self.limits) for _ in range(min(self.workers, len(jobs)) - 1)]
        staging = tempfile.mkdtemp(prefix="citeline-attachments-")
        run = _PoolRun(sorted(jobs, key=lambda j: j.stat.st_size), self.ahead, replace(options, staging_dir=staging))
        threads = [threading.Thread(target=run.work, args=(p, i % 2 == 0), daemon=True, name=f"citeline-parse-{i}")
                   for i, p in enumerate(parsers)]
        for thread in threads:
            thread.start()
        try:
            yield from run.results(len(threads))
        finally:
            run.stop.set()
            for _ in threads:
                run.room.release()  # wake any worker thread waiting for room, so it sees `stop`
            for parser in parsers[1:]:
                parser.close()
            shutil.rmtree(staging, ignore_errors=True)


class _PoolRun:
    """The state one `ParserPool.parse` call shares between its worker threads and its consumer."""

    def __init__(self, jobs: list[ParseJob], ahead: int, options: ParseOptions) -> None:
        self.pending = deque(jobs)
        self.options = options
        self.lock, self.stop, self.room = threading.Lock(), threading.Event(), threading.Semaphore(ahead)
        self.done: SimpleQueue[tuple[ParseJob, Family | FileError | BaseException] | None] = SimpleQueue()

    def work(self, parser: IsolatedParser, smallest_first: bool) -> None:
        try:
            while True:
                self.room.acquire()
                with self.lock:
                    if self.stop.is_set() or not self.pending:
                        return
                    job = self.pending.popleft() if smallest_first else self.pending.pop()
                try:
                    doc = parser.parse(job.path, job.sha256, self.options)
                    self.done.put((job, expand(doc, parser.parse, self.options)))
                except FileError as exc:
                    self.done.put((job, exc))
                except BaseException as exc:  # a bug, not a bad file: the consumer re-raises it
                    self.done.put((job, exc))
                    return
        finally:
            self.done.put(None)

    def results(self, running: int) -> Iterator[ParseOutcome]:
        while running:
            got = self.done.get()
            if got is None:
                running -= 1
                continue
            job, result = got
            self.room.release()
            if isinstance(result, Family):
                yield ParseOutcome(job, result.document, result.attachments)
            elif isinstance(result, FileError):
                yield ParseOutcome(job, result)
            else:
                raise result  # a bug in a worker thread, not a bad file
