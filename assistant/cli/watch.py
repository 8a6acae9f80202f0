"""`citeline ingest PATH... --watch`: keep a knowledge base in sync with folders, on real file-system events
(`watchfiles`).

A changed file is ingested once it has stopped changing: its size and mtime unchanged for `settle_s` (no
half-written PDFs). Changes that arrive together are debounced into one batch: a batch starts only when every
pending file has settled (or one has waited `max_wait_s`, so a file written forever cannot hold the others back).
Deleted files are forgotten with `prune`. A bad file fails alone (a `failed` event); the watcher goes on. The
writer lock is held only while a batch is stored, so other writers can work in between (a batch that finds the
lock taken waits for it). SIGINT/SIGTERM stop it between two documents, each committed whole, so the KB stays
consistent and the lock is released; a second signal stops at once.

Events, one a line (`--json`: JSON objects on stdout; otherwise text): `started`, then per batch `ingested`,
`failed`, `removed` and a closing `batch` summary (batch 0 is the initial sync), and `stopped` at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ingest.discovery import discover
from ingest.errors import CitelineError, MissingDependency
from ingest.formats import SUPPORTED
from retrieval.errors import KBLocked


@dataclass(frozen=True)
class WatchSettings:
    settle_s: float = 2.0  # a file is ready once its size and mtime have not changed for this long
    max_wait_s: float = 60.0  # the longest a settled file waits for the others in its burst
    tick_ms: int = 200  # how often pending files are looked at
    prune: bool = False  # forget deleted files

    def __post_init__(self) -> None:
        if not self.settle_s > 0 or not self.max_wait_s >= self.settle_s or self.tick_ms < 10:
            raise ValueError(f"invalid watch settings: {self}")


class _Stop(BaseException):
    """Raised between two documents when a stop was asked for (not an Exception: nothing may swallow it)."""


class Events:
    """Event lines: JSON objects on stdout (`as_json`), else short text lines; a progress line on stderr each."""

    def __init__(self, as_json: bool, out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.as_json, self.out, self.err = as_json, out or sys.stdout, err or sys.stderr

    def emit(self, event: str, **fields: Any) -> None:
        if self.as_json:
            print(json.dumps({"event": event, **fields, "at": round(time.time(), 3)}), file=self.out, flush=True)
        else:
            print(_text(event, fields), file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(f"citeline: {text}", file=self.err, flush=True)


def _text(event: str, f: dict[str, Any]) -> str:
    if event == "ingested":
        return f"ingested  {f['path']} ({f['pages']} pages, {f['chunks']} passages, {f['figures']} figures)"
    if event == "failed":
        return f"failed    {f['path']}: {f['error']}"
    if event == "removed":
        return f"removed   {f['path']}"
    if event == "batch":
        return (f"batch {f['batch']}: {f['ingested']} ingested, {f['failed']} failed, {f['removed']} removed "
                f"in {f['seconds']:.1f} s")
    return f"{event}   " + ", ".join(f"{k}={v}" for k, v in f.items())


@dataclass
class _Pending:
    last_event: float
    seen: tuple[int, int] | None = None  # (size, mtime_ns) at the last look
    stable_since: float = 0.0
    first_event: float = 0.0


@dataclass
class _Totals:
    batches: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {"ingested": 0, "failed": 0, "removed": 0})


class Watcher:
    def __init__(self, sdk: Any, paths: Sequence[str], settings: WatchSettings, events: Events,
                 passwords: Sequence[str] = ()) -> None:
        self.sdk, self.settings, self.events, self.passwords = sdk, settings, events, tuple(passwords)
        self.roots = [Path(p).expanduser().resolve() for p in paths]
        for raw, root in zip(paths, self.roots, strict=True):
            if not root.exists():
                raise FileNotFoundError(f"{raw}: no such file or folder")
        # the KB's own files, never ingested: the KB folder, or for a server KB the local folder of its assets
        self.kb_root = Path(sdk.files_dir).expanduser().resolve()
        folder_kb = isinstance(sdk.kb_dir, Path)
        self.kb_name = str(self.kb_root) if folder_kb else sdk.location
        for root in self.roots:
            if root in self.kb_root.parents and not any(
                    part.startswith(".") for part in self.kb_root.relative_to(root).parts):
                what = str(self.kb_root) if folder_kb else f"{sdk.location}'s assets folder {self.kb_root}"
                hidden = f"--kb {root / '.citeline'}" if folder_kb else f"CITELINE_HOME={root / '.citeline'}"
                raise CitelineError(f"the knowledge base {what} is inside the watched folder {root}: its page "
                                    "images would be ingested; put it elsewhere, or in a hidden folder "
                                    f"(e.g. {hidden})")
        self.stop = threading.Event()
        self.reason = ""
        self.pending: dict[str, _Pending] = {}
        self.deleted: set[str] = set()
        self.totals = _Totals()
        self._locked_note = 0.0

    # -- the loop -------------------------------------------------------------------------------------------
    def run(self) -> int:
        watchfiles = _watchfiles()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            changes = watchfiles.watch(*self.roots, watch_filter=self._filter(watchfiles), debounce=500, step=50,
                                       rust_timeout=self.settings.tick_ms, yield_on_timeout=True,
                                       stop_event=self.stop, raise_interrupt=False)
            next(changes, None)  # the first tick: the OS watch is in place, nothing written from now on is missed
            self.events.emit("started", paths=[str(r) for r in self.roots], kb=self.kb_name,
                             settle_s=self.settings.settle_s, prune=self.settings.prune)
            self.events.note(f"watching {', '.join(map(str, self.roots))} (a file is ingested once unchanged for "
                             f"{self.settings.settle_s:g} s); Ctrl-C stops")
            self._guarded(self._initial_sync)
            for batch in changes:
                self._record(batch)
                if self.stop.is_set():
                    break
                self._guarded(self._maybe_sync)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.events.emit("stopped", reason=self.reason or "end", batches=self.totals.batches, **self.totals.counts)
        self.events.note(f"stopped ({self.reason or 'end'}); the knowledge base is consistent")
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop now (each document is still committed whole)
        self.reason = signal.Signals(signum).name
        self.stop.set()

    def _guarded(self, step: Callable[[], None]) -> None:
        with contextlib.suppress(_Stop):  # the stop was asked for mid-batch: the loop ends at the next tick
            step()

    def _filter(self, watchfiles: Any) -> Callable[[Any, str], bool]:
        default = watchfiles.DefaultFilter(ignore_paths=[str(self.kb_root)])

        def wanted(change: Any, path: str) -> bool:
            return default(change, path) and not self._hidden(Path(path))

        return wanted

    def _hidden(self, path: Path) -> bool:
        """Inside the KB, or a hidden file or folder below a watched root (as `discover` skips them)."""
        if path == self.kb_root or self.kb_root in path.parents:
            return True
        for root in self.roots:
            if path == root or root in path.parents:
                return any(part.startswith(".") for part in path.relative_to(root).parts)
        return False

    def _record(self, changes: Iterable[tuple[Any, str]]) -> None:
        now = time.monotonic()
        for change, raw in changes:
            path = str(Path(raw))
            if change.name == "deleted":
                self.pending.pop(path, None)
                self.deleted.add(path)
                continue
            if change.name == "modified" and os.path.isdir(path):
                continue  # a folder's own metadata; its files report themselves
            self.deleted.discard(path)
            entry = self.pending.setdefault(path, _Pending(now, first_event=now))
            entry.last_event = now

    # -- batches --------------------------------------------------------------------------------------------
    def _initial_sync(self) -> None:
        self._sync([str(r) for r in self.roots], [], prune=self.settings.prune)

    def _maybe_sync(self) -> None:
        now = time.monotonic()
        ready, waiting = self._settled(now)
        overdue = any(now - self.pending[p].first_event >= self.settings.max_wait_s for p in ready)
        if waiting and not overdue:
            return  # part of the burst is still being written: wait for it
        if not ready and not self.deleted:
            return
        gone = sorted(p for p in self.deleted if not os.path.lexists(p))
        if self._sync(ready, gone, prune=False):
            for path in ready:
                self.pending.pop(path, None)
            self.deleted.clear()

    def _settled(self, now: float) -> tuple[list[str], list[str]]:
        """The pending files that have stopped changing, and those still changing (files gone are dropped)."""
        ready, waiting = [], []
        for path, entry in list(self.pending.items()):
            try:
                st = os.stat(path)
            except OSError:
                del self.pending[path]  # gone again (its `deleted` event handles it)
                continue
            if os.path.isdir(path):  # a folder moved or created here: its files settle one by one
                del self.pending[path]
                for found, _ in discover([path]):
                    self.pending.setdefault(found, _Pending(now, first_event=now))
                continue
            seen = (st.st_size, st.st_mtime_ns)
            if seen != entry.seen:
                entry.seen, entry.stable_since = seen, now
            quiet = min(now - entry.stable_since, now - entry.last_event)
            if quiet >= self.settings.settle_s:
                ready.append(path)
            else:
                waiting.append(path)
        return ready, waiting

    def _sync(self, paths: list[str], gone: list[str], prune: bool) -> bool:
        """Ingest `paths` and forget `gone` (with prune) as one batch; False when the writer lock is taken."""
        started = time.perf_counter()
        batch = self.totals.batches
        counts = {"ingested": 0, "failed": 0, "removed": 0, "unchanged": 0}
        files = [p for p in paths if os.path.isdir(p) or _supported(p)]  # no `skipped` noise from temp files
        try:
            results, pruned = self._ingest(files, prune) if files else ([], [])
            if gone and self.settings.prune:
                pruned += self.sdk.remove(*gone)
        except KBLocked as exc:
            if time.monotonic() - self._locked_note > 30:
                self.events.note(f"waiting for the writer lock: {exc}")
                self._locked_note = time.monotonic()
            return False
        for result in results:
            self._report(result, batch, counts)
        for path in pruned:
            counts["removed"] += 1
            self.events.emit("removed", path=path, batch=batch)
        for path in [g for g in gone if _supported(g)] if not self.settings.prune else []:
            self.events.note(f"{path} was deleted; it stays in the knowledge base (--prune forgets deleted files)")
        for key in self.totals.counts:
            self.totals.counts[key] += counts[key]
        if batch == 0 or any(counts.values()):  # numbered as emitted: a batch of nothing is no batch
            self.totals.batches += 1
            self.events.emit("batch", batch=batch, **counts, seconds=round(time.perf_counter() - started, 3))
        return True

    def _ingest(self, files: list[str], prune: bool) -> tuple[list[Any], list[str]]:
        """The batch in one writer session; if it cannot be read as a whole (a file vanished under it, say),
        file by file, so one bad file costs only itself."""
        try:
            self.sdk.ingest(*files, passwords=self.passwords, prune=prune, progress=self._progress)
            report = self.sdk.last_report
            return list(report.files), list(report.pruned)
        except KBLocked:
            raise
        except (CitelineError, OSError) as exc:
            if len(files) == 1:
                from ingest.types import FileResult

                return [FileResult(files[0], "failed", error=str(exc))], []
        results: list[Any] = []
        for path in files:
            results += self._ingest([path], False)[0]
        return results, []

    def _progress(self, progress: Any) -> None:
        if self.stop.is_set():
            raise _Stop  # between two documents: each one before is committed whole
        if progress.status in ("ingested", "failed"):
            self.events.note(f"[{progress.files_done}/{progress.files_total}] {progress.status} {progress.path}")

    def _report(self, result: Any, batch: int, counts: dict[str, int]) -> None:
        if result.status == "ingested":
            counts["ingested"] += 1
            self.events.emit("ingested", path=result.path, pages=result.pages, chunks=result.chunks,
                             figures=result.figures, warning=result.warning, batch=batch,
                             **({"attachment_errors": list(result.attachment_errors)}
                                if result.attachment_errors else {}))
        elif result.status == "failed":
            counts["failed"] += 1
            self.events.emit("failed", path=result.path, error=result.error, batch=batch)
        elif result.status == "unchanged":
            counts["unchanged"] += 1


def _supported(path: str) -> bool:
    return Path(path).suffix.lower() in SUPPORTED


def _watchfiles() -> Any:
    try:
        import watchfiles
    except ModuleNotFoundError as exc:
        raise MissingDependency("folder watching (watchfiles)", "pip install watchfiles") from exc
    return watchfiles


def watch(sdk: Any, paths: Sequence[str], settings: WatchSettings, *, as_json: bool,
          passwords: Sequence[str] = ()) -> int:
    """Run the watcher until SIGINT/SIGTERM; 0 on a clean stop."""
    return Watcher(sdk, paths, settings, Events(as_json), passwords).run()
