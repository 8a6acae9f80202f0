"""Background ingest jobs: one writer thread per knowledge base, a FIFO queue, progress anyone can poll.

    jobs = JobQueue(lambda paths, prune, progress: kb.ingest(*paths, prune=prune, progress=progress).last_report)
    job = jobs.submit(["docs/"])          # returns at once; the job is queued or running
    jobs.get(job.id).to_json()            # state, files done/total, pages, per-file errors, the final report

The KB allows one writer at a time, so jobs run one after another in a single daemon thread; a job waiting
for another says so (`queued behind job X`). A job belongs to the process, not to the request that started
it: a client that goes away stops nothing. Jobs are kept in memory (the last `keep` finished ones).
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from retrieval.kb_writer import IngestReport, Progress, ProgressFn

JobState = Literal["queued", "running", "done", "failed"]
IngestFn = Callable[[Sequence[str], bool, ProgressFn], "IngestReport | None"]


@dataclass
class Job:
    """One ingest request and what has become of it. Mutated only by its queue, under the queue's lock."""

    id: str
    paths: tuple[str, ...]
    prune: bool = False
    state: JobState = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    files_done: int = 0
    files_total: int = 0
    pages: int = 0
    current: str = ""  # the file last finished
    failed: list[str] = field(default_factory=list)  # files that failed so far (errors: in `errors`)
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"path", "error"} per failed file, at the end
    report: dict[str, Any] | None = None  # the IngestReport's JSON, once done
    error: str | None = None  # why the whole job failed (e.g. the KB is locked by another process)
    behind: str | None = None  # the job this one waits for (set when the snapshot is taken)
    exception: BaseException | None = field(default=None, repr=False)  # what ended a failed job (not in JSON)

    @property
    def message(self) -> str:
        if self.state == "queued":
            return f"queued behind job {self.behind}" if self.behind else "queued"
        if self.state == "running":
            return f"{self.files_done}/{self.files_total} files, {self.pages} pages"
        if self.state == "failed":
            return f"failed: {self.error}"
        totals = (self.report or {}).get("totals", {})
        return (f"done: {totals.get('ingested', 0)} ingested, {totals.get('unchanged', 0)} unchanged, "
                f"{totals.get('failed', 0)} failed, {totals.get('pages', 0)} pages")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "object": "ingest.job", "state": self.state, "message": self.message,
            "queued_behind": self.behind, "paths": list(self.paths), "prune": self.prune,
            "created": round(self.created, 3), "started": self.started and round(self.started, 3),
            "finished": self.finished and round(self.finished, 3),
            "progress": {"files_done": self.files_done, "files_total": self.files_total, "pages": self.pages,
                         "current": self.current, "failed": list(self.failed)},
            "errors": list(self.errors), "error": self.error, "report": self.report,
        }


class JobQueue:
    """Runs `ingest(paths, prune, progress)` for each submitted job, one at a time, in one daemon thread."""

    def __init__(self, ingest: IngestFn, *, keep: int = 100, name: str = "citeline-jobs") -> None:
        self._ingest = ingest
        self._keep = keep
        self._name = name
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # submission order
        self._waiting: list[str] = []  # queued job ids, oldest first
        self._running: str | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- asking ---------------------------------------------------------------------------------------------
    def submit(self, paths: Sequence[str], *, prune: bool = False) -> Job:
        """Queue an ingest of `paths` and return (a snapshot of) its job at once."""
        job = Job(id=f"job-{uuid.uuid4().hex[:12]}", paths=tuple(str(p) for p in paths), prune=prune)
        with self._cond:
            if self._closed:
                raise RuntimeError("the job queue is closed")
            self._jobs[job.id] = job
            self._waiting.append(job.id)
            self._start_worker()
            self._cond.notify_all()
            return self._snapshot(job)

    def get(self, job_id: str) -> Job | None:
        with self._cond:
            job = self._jobs.get(job_id)
            return self._snapshot(job) if job else None

    def jobs(self) -> list[Job]:
        """Every job kept, newest first."""
        with self._cond:
            return [self._snapshot(j) for j in reversed(self._jobs.values())]

    def busy(self) -> bool:
        """True while a job runs or waits (the KB's writer lock may then be this process's own)."""
        with self._cond:
            return self._running is not None or bool(self._waiting)

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        """Block until the job has ended (or `timeout` seconds passed); its latest snapshot."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while (job := self._jobs.get(job_id)) is not None and job.state in ("queued", "running"):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
            return self._snapshot(job) if job else None

    def close(self, timeout: float = 30.0) -> None:
        """Take no more jobs; let the running and queued ones finish (up to `timeout` seconds)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    # -- the worker -----------------------------------------------------------------------------------------
    def _start_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, daemon=True, name=self._name)
            self._thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:
                    return
                job = self._jobs[self._waiting.pop(0)]
                self._running, job.state, job.started = job.id, "running", time.time()
                self._cond.notify_all()
            self._run(job)

    def _run(self, job: Job) -> None:
        try:
            report = self._ingest(job.paths, job.prune, lambda p: self._progress(job, p))
        except Exception as exc:  # KBLocked, a broken KB, ...: the job says why; the worker goes on
            self._end(job, "failed", error=str(exc) or type(exc).__name__, exception=exc)
            return
        self._end(job, "done", report=report)

    def _progress(self, job: Job, progress: Progress) -> None:
        with self._cond:
            job.files_done, job.files_total, job.pages = progress.files_done, progress.files_total, progress.pages_done
            job.current = progress.path
            if progress.status == "failed" and progress.path:
                job.failed.append(progress.path)
            self._cond.notify_all()

    def _end(self, job: Job, state: JobState, *, report: IngestReport | None = None,
             error: str | None = None, exception: BaseException | None = None) -> None:
        with self._cond:
            job.state, job.finished, job.error, job.exception = state, time.time(), error, exception
            if report is not None:
                job.report = report.to_json()
                job.errors = [{"path": f.path, "error": f.error} for f in report.files if f.status == "failed"]
                job.failed = [e["path"] for e in job.errors]
                job.files_done = job.files_total = len(report.files)
                job.pages = int(report.totals["pages"])
            self._running = None
            self._forget_old()
            self._cond.notify_all()

    def _forget_old(self) -> None:
        ended = [i for i, j in self._jobs.items() if j.state in ("done", "failed")]
        for job_id in ended[: max(0, len(ended) - self._keep)]:
            del self._jobs[job_id]

    # -- snapshots ------------------------------------------------------------------------------------------
    def _snapshot(self, job: Job) -> Job:
        """A copy for callers (the worker keeps mutating the original), with `behind` filled in."""
        copy = self._snapshot_locked(job)
        if job.state == "queued" and job.id in self._waiting:
            ahead = [self._running] if self._running else []
            ahead += self._waiting[: self._waiting.index(job.id)]
            copy.behind = ahead[-1] if ahead else None
        return copy

    @staticmethod
    def _snapshot_locked(job: Job) -> Job:
        return Job(**{**job.__dict__, "failed": list(job.failed), "errors": [dict(e) for e in job.errors]})


_QUEUES: weakref.WeakKeyDictionary[Any, JobQueue] = weakref.WeakKeyDictionary()
_QUEUES_LOCK = threading.Lock()


def ingest_queue(sdk: Any) -> JobQueue:
    """The job queue that ingests into `sdk`'s knowledge base (one per SDK object, made on first use): what the
    UI's upload page submits to and polls, so its ingests run as the server's do."""
    with _QUEUES_LOCK:
        queue = _QUEUES.get(sdk)
        if queue is None:
            ref = weakref.ref(sdk)

            def ingest(paths: Sequence[str], prune: bool, progress: ProgressFn) -> IngestReport | None:
                owner = ref()
                if owner is None:
                    raise RuntimeError("the knowledge base this job was for has been closed")
                return owner.ingest(*paths, prune=prune, progress=progress).last_report

            queue = _QUEUES[sdk] = JobQueue(ingest, name="citeline-ui-jobs")
        return queue
