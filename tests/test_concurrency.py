"""One writer, many readers, across real processes.

A `citeline ingest` subprocess writes a folder of 1230 files while another process loops status, search and
`ask --model extractive` (a long-lived SDK view, plus fresh `citeline ask` processes) until the ingest exits,
and a `citeline serve` started before the ingest answers over HTTP on loopback. No reader may fail (no
exception, no "database is locked"), the document count a reader sees never goes down, the server sees the new
documents afterwards without a restart, and a second writer fails at once naming the lock's holder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port, make_pdf

ROOT = Path(__file__).resolve().parents[1]
N_NOTES, N_PDFS = 1200, 30  # with fake embedders on 2 cores: an ingest of several seconds
FAKE = ["--text-model", "fake", "--image-model", "fake"]

READER = r'''
import json, os, subprocess, sys, traceback
from assistant.sdk import Citeline

kb_dir, stop, log_path = sys.argv[1:4]
sdk = Citeline(kb_dir)  # one long-lived read-only view: its FAISS index follows the writer's commits
with open(log_path, "w") as log:
    i = 0
    while not os.path.exists(stop):
        rec = {"i": i}
        try:
            rec["documents"] = sdk.status()["counts"]["documents"]
            rec["hits"] = len(sdk.search("harbour ledger containers", top_k=5))
            answer = sdk.ask("How many containers did the harbour handle?", model="extractive")
            rec["citations"] = len(answer.citations)
            if i % 8 == 0:  # a fresh process opening the KB mid-write
                done = subprocess.run([sys.executable, "-m", "assistant.cli", "ask", "How many containers?",
                                       "--kb", kb_dir, "--model", "extractive", "--json"],
                                      capture_output=True, text=True, timeout=120)
                rec["cli_rc"] = done.returncode
                if done.returncode != 0 or "locked" in done.stderr:
                    rec["error"] = f"citeline ask exited {done.returncode}: {done.stderr[-2000:]}"
                else:
                    rec["cli_documents"] = len({s["doc_id"] for s in json.loads(done.stdout)["sources"]})
        except Exception:
            rec["error"] = traceback.format_exc()
        log.write(json.dumps(rec) + "\n")
        log.flush()
        i += 1
    rec = {"final": True, "documents": sdk.status()["counts"]["documents"],
           "last_found": [h.doc_name for h in sdk.search("zebracode%d" % (int(sys.argv[4]) - 1), top_k=1)]}
    log.write(json.dumps(rec) + "\n")
'''


def _corpus(folder: Path) -> None:
    folder.mkdir()
    for i in range(N_NOTES):
        (folder / f"note{i:03d}.md").write_text(
            f"# Harbour ledger {i}\n\nOn day {i} the harbour handled {1000 + i} containers. "
            f"The entry's code word is zebracode{i}.\n\n" + "The cranes worked through the night. " * 5)
    for i in range(N_PDFS):
        make_pdf(folder / f"report{i:02d}.pdf", [f"Report {i}: the harbour handled {5000 + i} containers.",
                                                 "Tugs assisted every large vessel. " * 15])


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=120)


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _records(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.endswith("}")]


def _wait_for(predicate: Any, what: str, procs: list[subprocess.Popen[Any]], patience_s: float = 120.0) -> None:
    deadline = time.monotonic() + patience_s
    while not predicate():
        for proc in procs:
            assert proc.poll() is None, f"{proc.args[3:5]} exited {proc.returncode} while waiting for {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


@pytest.mark.integration
def test_readers_and_a_server_during_a_real_ingest(tmp_path: Path) -> None:
    import httpx

    seed, folder, kb = tmp_path / "seed", tmp_path / "docs", tmp_path / "kb"
    seed.mkdir()
    make_pdf(seed / "seed.pdf", ["The harbour ledger opened in 1901 with 12 containers."])
    assert _cli("ingest", str(seed), "--kb", str(kb), *FAKE, "--quiet").returncode == 0
    _corpus(folder)
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.md").write_text("# Other\n\nA second writer's file.\n")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = {name: (tmp_path / f"{name}.log") for name in ("server", "ingest", "reader")}
    server = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--kb", str(kb), "--host", "127.0.0.1",
                               "--port", str(port), "--model", "extractive"], cwd=ROOT, env=_env(),
                              stdout=logs["server"].open("wb"), stderr=subprocess.STDOUT)
    procs = [server]
    try:
        def server_up() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        _wait_for(server_up, "the server", procs)
        assert httpx.get(f"{base}/v1/status", timeout=30).json()["counts"]["documents"] == 1
        seed_id = httpx.get(f"{base}/v1/documents", timeout=30).json()["documents"][0]["doc_id"]

        stop = tmp_path / "stop"
        reader = subprocess.Popen([sys.executable, "-c", READER, str(kb), str(stop), str(logs["reader"]), str(N_NOTES)],
                                  cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(reader)
        _wait_for(lambda: len(_records(logs["reader"])) >= 1, "the reader's first round", procs)
        ingest = subprocess.Popen([sys.executable, "-m", "assistant.cli", "ingest", str(folder), "--kb", str(kb),
                                   *FAKE, "--workers", "1", "--json"], cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                  stderr=logs["ingest"].open("w"), text=True)
        procs.append(ingest)

        # while the ingest is under way (it has reported files): a second writer
        _wait_for(lambda: " files " in logs["ingest"].read_text(errors="replace"), "the ingest's progress", procs)
        second = _cli("ingest", str(other), "--kb", str(kb), *FAKE, "--quiet")
        remover = _cli("remove", str(seed / "seed.pdf"), "--kb", str(kb))
        http_remove = httpx.delete(f"{base}/v1/documents/{seed_id}", timeout=60)  # the server's own writer
        was_running = ingest.poll() is None
        mid = httpx.post(f"{base}/v1/search", json={"query": "harbour ledger containers", "top_k": 5}, timeout=60)

        out, _ = ingest.communicate(timeout=600)
        procs.remove(ingest)
        assert ingest.returncode == 0, logs["ingest"].read_text()[-3000:]
        stop.touch()
        _, reader_err = reader.communicate(timeout=120)
        procs.remove(reader)
        assert reader.returncode == 0, reader_err

        assert was_running, "the ingest finished before the second writer could try: make the corpus larger"
        for attempt in (second, remover):
            assert attempt.returncode == 2, attempt.stderr
            assert f"being written by pid {ingest.pid}" in attempt.stderr and "ingest" in attempt.stderr
        assert http_remove.status_code == 409 and f"pid {ingest.pid}" in http_remove.text, http_remove.text
        assert mid.status_code == 200, mid.text

        report = json.loads(out)
        assert report["totals"]["ingested"] == N_NOTES + N_PDFS and report["totals"]["failed"] == 0
        records = _records(logs["reader"])
        final = records.pop()
        errors = [r["error"] for r in records if "error" in r]
        assert not errors, errors[0]
        counts = [r["documents"] for r in records]
        assert counts == sorted(counts), "a reader saw the document count go down"
        assert len(set(counts)) >= 3, f"the readers saw too few states of the ingest: {sorted(set(counts))}"
        assert any("cli_rc" in r for r in records) and all(r["hits"] > 0 for r in records)
        total = 1 + N_NOTES + N_PDFS
        assert final["documents"] == total  # the long-lived view sees every document, without reopening
        assert final["last_found"] == [f"note{N_NOTES - 1:03d}.md"]

        # the server, started before the ingest, sees the new documents without a restart
        status = httpx.get(f"{base}/v1/status", timeout=30).json()
        assert status["counts"]["documents"] == total
        for k in (0, N_NOTES // 2, N_NOTES - 1):
            hits = httpx.post(f"{base}/v1/search", json={"query": f"zebracode{k}", "top_k": 1}, timeout=60).json()
            assert hits["hits"][0]["doc"] == f"note{k:03d}.md"
        answer = httpx.post(f"{base}/v1/ask", json={"question": "What is the code word of harbour ledger 149?"},
                            timeout=60)
        assert answer.status_code == 200 and "zebracode149" in answer.text
        checked = _cli("check", "--kb", str(kb), "--json")
        assert checked.returncode == 0 and json.loads(checked.stdout)["problems"] == [], checked.stdout
        for name, path in logs.items():
            assert "database is locked" not in path.read_text(errors="replace"), name
    finally:
        for proc in procs:
            _stop(proc)
