"""`citeline ingest --watch` on a real temp folder: a real subprocess, real file-system events (watchfiles), its
JSON event lines read from stdout with bounded waits. The KB lives in a hidden folder inside the watched one, so
every test also checks that the watcher never ingests its own writes."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("watchfiles")

from assistant.cli import main  # noqa: E402
from retrieval.lock import WriterLock  # noqa: E402
from tests.conftest import ROOT, make_pdf  # noqa: E402

WAIT_S = 60.0  # the longest any one event may take on a loaded 2-core machine


class WatchProcess:
    """`citeline ingest FOLDER --watch --json` with its stdout read line by line on a thread."""

    def __init__(self, folder: Path, kb: Path, *extra: str, settle: float = 0.5) -> None:
        self.kb = kb
        self.err = open(folder.parent / "watch-stderr.log", "w+")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "assistant.cli", "ingest", str(folder), "--kb", str(kb), "--text-model", "fake",
             "--image-model", "fake", "--watch", "--json", "--settle", str(settle), *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))  # every stdout line must be one JSON object
        self.lines.put(None)

    def next(self, match: Callable[[dict[str, Any]], bool], what: str, timeout: float = WAIT_S) -> dict[str, Any]:
        """The next event that `match`es (the ones before it are kept in `seen`); fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                event = self.lines.get(timeout=max(0.01, left))
            except queue.Empty:
                raise AssertionError(f"no {what} within {timeout:.0f} s; events: {self.seen}; "
                                     f"stderr: {self.stderr()}") from None
            if event is None:
                raise AssertionError(f"the watcher exited ({self.proc.poll()}) before {what}; events: {self.seen}; "
                                     f"stderr: {self.stderr()}")
            self.seen.append(event)
            path = event.get("path", "")
            assert not path.startswith(str(self.kb)), f"the watcher ingested its own KB: {event}"
            if match(event):
                return event

    def event(self, kind: str, path: Path | None = None) -> dict[str, Any]:
        return self.next(lambda e: e["event"] == kind and (path is None or e.get("path") == str(path)),
                         f"{kind} event for {path or 'anything'}")

    def ready(self) -> None:
        self.event("started")
        self.next(lambda e: e["event"] == "batch" and e["batch"] == 0, "the initial sync")

    def stderr(self) -> str:
        self.err.flush()
        self.err.seek(0)
        return self.err.read()[-2000:]

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=WAIT_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.err.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    return (tmp_path / "docs").resolve()


@pytest.fixture
def watcher(folder: Path) -> Iterator[WatchProcess]:
    w = WatchProcess(folder, folder / ".citeline", "--prune")
    try:
        w.ready()
        yield w
    finally:
        w.stop()


def search_docs(kb: Path, query: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "search", query, "--kb", str(kb), "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S)
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else []


def test_a_new_file_is_ingested_and_searchable(watcher: WatchProcess, folder: Path) -> None:
    note = folder / "zebra.txt"
    note.write_text("Zebras in the Serengeti migrate north in July.\n")
    event = watcher.event("ingested", note)
    assert event["pages"] == 1 and event["chunks"] >= 1 and event["batch"] >= 1
    hits = search_docs(watcher.kb, "zebras migrate")
    assert hits and hits[0]["doc"] == "zebra.txt"


def test_a_slowly_written_pdf_is_ingested_once_and_complete(folder: Path, tmp_path: Path) -> None:
    pages = [f"Page {i} is about the lighthouse keeper's log." for i in range(1, 6)]
    pages.append("The final page names the keeper: Quillon Marsh.")
    data = make_pdf(tmp_path / "source.pdf", pages).read_bytes()
    w = WatchProcess(folder, folder / ".citeline", settle=1.5)
    try:
        w.ready()
        target = folder / "log.pdf"
        with open(target, "wb") as out:  # a slow download: pieces 0.1 s apart, well inside the settle time
            for start in range(0, len(data), max(1, len(data) // 8)):
                out.write(data[start:start + max(1, len(data) // 8)])
                out.flush()
                os.fsync(out.fileno())
                time.sleep(0.1)
        event = w.event("ingested", target)
        assert event["pages"] == 6
        sentinel = folder / "after.txt"  # a later batch: anything still pending for log.pdf shows up before it
        sentinel.write_text("A sentinel note about otters.\n")
        w.event("ingested", sentinel)
        about_log = [e for e in w.seen if e.get("path") == str(target)]
        assert about_log == [event], f"log.pdf was reported more than once: {about_log}"
        hits = search_docs(w.kb, "Quillon Marsh keeper")
        assert hits and hits[0]["doc"] == "log.pdf" and hits[0]["page"] == 6
    finally:
        assert w.stop() == 0


def test_a_burst_of_five_files_is_one_batch(folder: Path) -> None:
    watcher = WatchProcess(folder, folder / ".citeline", settle=2.0)
    try:
        watcher.ready()
        names = [folder / f"note{i}.txt" for i in range(5)]
        for i, path in enumerate(names):  # 0.1 s apart: separate file-system events, one burst within the settle
            path.write_text(f"Note {i}: the harbour crane number {i} lifts containers.\n")
            time.sleep(0.1)
        batch = watcher.next(lambda e: e["event"] == "batch" and e["batch"] >= 1, "the burst's batch")
        ingested = [e for e in watcher.seen if e["event"] == "ingested"]
        assert sorted(e["path"] for e in ingested) == sorted(map(str, names))
        assert {e["batch"] for e in ingested} == {batch["batch"]} and batch["ingested"] == 5
    finally:
        assert watcher.stop() == 0


def test_a_corrupt_file_fails_alone_and_the_watcher_goes_on(watcher: WatchProcess, folder: Path) -> None:
    bad = folder / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7\nthis is not really a PDF\x00\xff" * 50)
    failed = watcher.event("failed", bad)
    assert "broken.pdf" in failed["error"] and "PDF" in failed["error"]
    good = folder / "fine.md"
    good.write_text("# Fine\n\nThe watcher still ingests after a bad file.\n")
    watcher.event("ingested", good)
    assert watcher.proc.poll() is None


def test_prune_removes_a_deleted_file(folder: Path) -> None:
    doomed = folder / "doomed.txt"
    doomed.write_text("The ferry timetable for Ardrossan changes in winter.\n")
    w = WatchProcess(folder, folder / ".citeline", "--prune")
    try:
        assert w.event("ingested", doomed)["batch"] == 0  # the initial sync
        assert search_docs(w.kb, "ferry timetable Ardrossan")[0]["doc"] == "doomed.txt"
        doomed.unlink()
        w.event("removed", doomed)
        assert all(h["doc"] != "doomed.txt" for h in search_docs(w.kb, "ferry timetable Ardrossan"))
    finally:
        assert w.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_it_cleanly_and_frees_the_lock(folder: Path, tmp_path: Path, sig: int) -> None:
    w = WatchProcess(folder, folder / ".citeline")
    try:
        w.ready()
    except BaseException:
        w.stop()
        raise
    for i in range(8):
        make_pdf(tmp_path / f"m{i}.pdf", [f"Manual {i} describes pump model P-{i}00 maintenance."])
        os.replace(tmp_path / f"m{i}.pdf", folder / f"m{i}.pdf")
    w.event("ingested")  # a batch is being stored: stop in the middle of it
    code = w.stop(sig)
    stopped = w.next(lambda e: e["event"] == "stopped", "the stopped event")
    assert code == 0 and stopped["reason"] == signal.Signals(sig).name
    WriterLock(w.kb).acquire().release()  # the lock is free
    status = subprocess.run([sys.executable, "-m", "assistant.cli", "status", "--kb", str(w.kb), "--json"],
                            cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["counts"]["documents"] >= 1
    check = subprocess.run([sys.executable, "-m", "assistant.cli", "check", "--kb", str(w.kb)],
                           cwd=ROOT, capture_output=True, text=True, timeout=WAIT_S)
    assert check.returncode == 0, check.stdout + check.stderr


def test_bad_usage_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(tmp_path / "missing"), "--kb", str(tmp_path / "kb"), "--watch", "--text-model",
                 "fake", "--image-model", "fake"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "docs").mkdir()
    assert main(["ingest", str(tmp_path / "docs"), "--kb", str(tmp_path / "docs" / "kb"), "--watch",
                 "--text-model", "fake", "--image-model", "fake"]) == 2
    assert "inside the watched folder" in capsys.readouterr().err
