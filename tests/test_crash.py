"""kill -9 a real `citeline ingest` at several moments: the KB must open, be consistent, and complete on re-run."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrieval.kb import KBSettings, KnowledgeBase
from tests.conftest import make_pdf

SETTINGS = KBSettings(text_model="fake", image_model="fake", tag_images=False)


def _corpus(folder: Path, n: int) -> None:
    folder.mkdir()
    for i in range(n):
        pages = [f"Document {i} page {p} mentions topic {i * 7 + p} and the number {i * 1000 + p}.\n\n"
                 + "Filler sentence about ingestion robustness. " * 30 for p in range(1, 4)]
        make_pdf(folder / f"doc{i:03d}.pdf", pages)


def _ingest_cmd(folder: Path, kb: Path) -> list[str]:
    return [sys.executable, "-m", "assistant.cli", "ingest", str(folder), "--kb", str(kb), "--text-model", "fake",
            "--image-model", "fake", "--quiet", "--json"]


def _check_consistent(kb_dir: Path) -> dict[str, int]:
    db = sqlite3.connect(kb_dir / "catalog.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    orphans = db.execute("SELECT COUNT(*) FROM chunks c LEFT JOIN vectors v ON v.id=c.id AND v.space='text'"
                         " WHERE v.id IS NULL").fetchone()[0]
    assert orphans == 0, "a chunk without its vector"
    dangling = db.execute("SELECT COUNT(*) FROM vectors v LEFT JOIN chunks c ON c.id=v.id WHERE c.id IS NULL").fetchone()[0]
    assert dangling == 0, "a vector without its chunk"
    fts = db.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0]
    assert fts == db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    # no half-ingested document: every document has all its pages and chunks on every page
    for doc_id, pages in db.execute("SELECT doc_id, pages FROM documents"):
        assert db.execute("SELECT COUNT(*) FROM pages WHERE doc_id=?", (doc_id,)).fetchone()[0] == pages
        covered = db.execute("SELECT COUNT(DISTINCT page) FROM chunks WHERE doc_id=?", (doc_id,)).fetchone()[0]
        assert covered == pages
    ingested = db.execute("SELECT COUNT(*) FROM files WHERE status='ingested'").fetchone()[0]
    docs = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    assert ingested == docs
    db.close()
    kb = KnowledgeBase.open(kb_dir, SETTINGS)  # opens, and the FAISS cache is healed to match the catalog
    index = kb.index("text")
    n_vectors = len(kb.catalog.vector_ids("text"))
    if index is not None:
        assert sorted(index.ids().tolist()) == kb.catalog.vector_ids("text").tolist()
    kb.close()
    return {"documents": docs, "vectors": n_vectors}


@pytest.mark.integration
def test_kill_minus_nine_at_several_points_never_corrupts(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    _corpus(folder, 60)
    reference = tmp_path / "reference"
    t0 = time.monotonic()
    subprocess.run(_ingest_cmd(folder, reference), check=True, capture_output=True)
    full_time = time.monotonic() - t0
    expected = _check_consistent(reference)
    assert expected["documents"] == 60

    kb_dir = tmp_path / "kb"
    kills = 0
    # kill after the k-th file is reported (and a little into the next one), so every run dies mid-ingest
    # whatever the machine's speed: during parsing, embedding, a commit, or an index save
    for k, delay in ((1, 0.0), (3, 0.01), (4, 0.03), (3, 0.0), (5, 0.05)):
        cmd = [a for a in _ingest_cmd(folder, kb_dir) if a != "--quiet"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None
        reported = 0
        for line in proc.stderr:
            reported += "files" in line and "pages/s" in line
            if reported >= k:
                break
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        proc.stderr.close()
        if (kb_dir / "catalog.sqlite").exists():
            _check_consistent(kb_dir)
    assert kills >= 4, f"the ingest finished before it could be killed ({full_time:.2f} s for 60 files)"
    out = subprocess.run(_ingest_cmd(folder, kb_dir), check=True, capture_output=True, text=True)
    assert '"failed": 0' in out.stdout
    final = _check_consistent(kb_dir)
    assert final == expected
    db_a = sqlite3.connect(reference / "catalog.sqlite")
    db_b = sqlite3.connect(kb_dir / "catalog.sqlite")
    q = "SELECT chunk_id FROM chunks ORDER BY chunk_id"
    assert [r[0] for r in db_a.execute(q)] == [r[0] for r in db_b.execute(q)]
