"""Crash at every point: a real `citeline` subprocess hard-exits (`CITELINE_FAULT`, see retrieval/faults.py) at
each commit point of `ingest`, `ingest --prune`, `remove` and `reindex`. Each time the KB opens, passes its
integrity check (no orphan rows, vectors or assets; the FAISS caches healed), and re-running the same command
gives a KB equal to a clean run: same documents, chunks, vector ids and search results. Also: kill -9 at
arbitrary moments of a larger ingest, and a valid but stale FAISS file copied back over the current one."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrieval import faults
from retrieval.kb import KnowledgeBase
from retrieval.settings import KBSettings
from tests.conftest import make_pdf

SETTINGS = KBSettings(text_model="fake", image_model="fake", tag_images=False)
FAKE = ["--text-model", "fake", "--image-model", "fake"]
QUERIES = ("harbour containers handled", "warranty water damage", "dark mode release", "figure picture")


# -- the folder, before and after a user's edits --------------------------------------------------------------
def _picture(path: Path) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 240), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((40, 40, 280, 200), fill=(30, 90, 200))
    draw.ellipse((120, 80, 200, 160), fill=(240, 200, 20))
    img.save(path)


def _base(folder: Path) -> None:
    (folder / "sub").mkdir(parents=True)
    make_pdf(folder / "a.pdf", ["The harbour handled 7000 containers in May.\n\nCranes were renewed.",
                                "In June the harbour handled 8100 containers."], title="Harbour report")
    make_pdf(folder / "b.pdf", ["The warranty covers defects for two years.\n\nWater damage is not covered."])
    (folder / "c.md").write_text("# Release notes\n\nVersion 2 adds a dark mode.\n\nBluetooth 5.3 is supported.\n")
    (folder / "d.txt").write_text("Meeting minutes. The budget for 2025 was approved by the board.\n")
    make_pdf(folder / "sub" / "e.pdf", ["Appendix: the lighthouse keeper logged 12 storms."])
    (folder / "sub" / "f.md").write_text("# Glossary\n\nA bollard is a short post for mooring ships.\n")


def _edit(folder: Path) -> None:
    """The base folder after a user's edits: two files changed, one deleted, a PDF and a picture added."""
    make_pdf(folder / "b.pdf", ["The warranty now covers defects for three years.\n\nWater damage is covered."])
    (folder / "c.md").write_text("# Release notes\n\nVersion 3 adds offline maps.\n")
    (folder / "d.txt").unlink()
    make_pdf(folder / "g.pdf", ["The ferry carried 950 passengers a day.", "Tickets cost 4 euros."])
    _picture(folder / "h.png")


def _cli(*args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `citeline` in its own process group, and return once every process of the group is gone: a parser
    worker whose writer died finishes its file (writing assets of a document never committed), then exits."""
    env = {k: v for k, v in os.environ.items() if k != faults.ENV}
    if fault:
        env[faults.ENV] = fault
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    out, err = proc.communicate(timeout=120)
    _wait_group_gone(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _wait_group_gone(pgid: int, patience_s: float = 60.0) -> None:
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    os.killpg(pgid, signal.SIGKILL)
    raise AssertionError(f"processes of group {pgid} still ran {patience_s:.0f} s after their writer exited")


# -- what a KB holds, to compare a crashed-then-rerun KB with a clean one --------------------------------------
def _state(kb_dir: Path) -> dict[str, Any]:
    from retrieval.search import Searcher

    kb = KnowledgeBase.open(kb_dir, SETTINGS)
    try:
        db = kb.catalog.db
        searcher = Searcher(kb)
        return {
            "documents": [(d.doc_id, d.name, d.pages, d.chunks, d.figures, d.paths) for d in kb.catalog.documents()],
            "files": db.execute("SELECT path, doc_id, status FROM files ORDER BY path").fetchall(),
            "chunks": db.execute("SELECT id, chunk_id, doc_id, page, kind FROM chunks ORDER BY id").fetchall(),
            "vectors": {s: kb.catalog.vector_ids(s).tolist() for s in kb.spaces()},
            "spaces": {s: (i["model"], i["dimension"]) for s, i in kb.spaces().items()},
            "faiss": {s: sorted(ix.ids().tolist()) for s in kb.spaces() if (ix := kb.index(s)) is not None},
            "assets": sorted(p.name for p in kb.assets_dir.iterdir()),
            "search": {q: [(h.id, h.doc_name, h.page, round(h.score, 6)) for h in searcher.search(q, top_k=5)]
                       for q in QUERIES},
        }
    finally:
        kb.close()


def _problems(kb_dir: Path, *, healed_too: bool) -> list[str]:
    kb = KnowledgeBase.open(kb_dir, SETTINGS)
    try:
        return [f"{p.kind}: {p.detail}" for p in kb.check() if healed_too or not p.healed]
    finally:
        kb.close()


class Scene:
    """One base KB and the two folder states, built once; each case works on copies."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / "docs"  # every KB records absolute paths: always this folder, in either state
        _base(root / "folder-base")
        shutil.copytree(root / "folder-base", root / "folder-edited")
        _edit(root / "folder-edited")
        self.use_folder("base")
        done = _cli("ingest", str(self.folder), "--kb", str(root / "base-kb"), *FAKE, "--no-ocr", "--workers", "1",
                    "--quiet")
        assert done.returncode == 0, done.stderr
        self.references: dict[str, dict[str, Any]] = {}

    def use_folder(self, name: str) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.copytree(self.root / f"folder-{name}", self.folder)  # copy2: mtimes kept, so unchanged is unchanged

    def fresh_kb(self, name: str) -> Path:
        target = self.root / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.root / "base-kb", target)
        return target

    def command(self, op: str, kb: Path) -> list[str]:
        ingest = ["ingest", str(self.folder), "--kb", str(kb), *FAKE, "--no-ocr", "--workers", "1", "--quiet"]
        return {
            "ingest": ingest,
            "prune": [*ingest, "--prune"],
            "remove": ["remove", str(self.folder / "sub"), str(self.folder / "a.pdf"), "--kb", str(kb)],
            "reindex": ["reindex", "--kb", str(kb), *FAKE],
        }[op]

    def folder_for(self, op: str) -> str:
        return "edited" if op in ("ingest", "prune") else "base"

    def reference(self, op: str) -> dict[str, Any]:
        if op not in self.references:
            kb = self.fresh_kb(f"reference-{op}")
            self.use_folder(self.folder_for(op))
            done = _cli(*self.command(op, kb))
            assert done.returncode == 0, done.stderr
            assert _problems(kb, healed_too=True) == []
            self.references[op] = _state(kb)
        return self.references[op]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return Scene(tmp_path_factory.mktemp("crash"))


# Every (operation, point[:n]) where a real run reaches the point: the test asserts the process died there.
# With one parser worker the order is fixed. `ingest` of the edited folder stores 4 documents (2 replace
# older versions; the picture registers the image space, a manifest write) in 4 commits and saves 2 caches;
# `--prune` adds a 5th commit (the deleted file); `remove` is 3 commits (one per file), `reindex` one.
CASES = [
    *[("ingest", p) for p in ("before_catalog_commit", "before_catalog_commit:3", "after_catalog_commit:2",
                              "after_catalog_commit:4", "between_documents:3", "mid_faiss_save:2",
                              "mid_manifest_write")],
    *[("prune", p) for p in ("before_catalog_commit:5", "after_catalog_commit:5", "between_documents:4",
                             "mid_faiss_save")],
    *[("remove", p) for p in ("before_catalog_commit:2", "after_catalog_commit", "after_catalog_commit:3",
                              "mid_faiss_save")],
    *[("reindex", p) for p in ("before_catalog_commit", "after_catalog_commit", "mid_faiss_save",
                               "mid_manifest_write")],
]


@pytest.mark.integration
@pytest.mark.parametrize(("op", "fault"), CASES, ids=[f"{op}-{fault}" for op, fault in CASES])
def test_crash_at_every_point_then_rerun_equals_a_clean_run(scene: Scene, op: str, fault: str) -> None:
    expected = scene.reference(op)
    kb = scene.fresh_kb("case")
    scene.use_folder(scene.folder_for(op))
    crashed = _cli(*scene.command(op, kb), fault=fault)
    assert crashed.returncode == faults.EXIT_CODE, f"the fault {fault} was not reached: {crashed.stderr}"
    assert f"fault injected at {fault.split(':')[0]}" in crashed.stderr

    assert _problems(kb, healed_too=False) == []  # opens, consistent; only self-healing leftovers allowed

    rerun = _cli(*scene.command(op, kb))
    assert rerun.returncode in (0, 1), rerun.stderr  # 1: a re-run `remove` may find nothing left to remove
    assert _problems(kb, healed_too=True) == []  # and the re-run has healed every leftover
    assert _state(kb) == expected


def test_the_fault_hook_is_inert_without_the_variable(scene: Scene) -> None:
    """The same commands with an unknown point run to completion (the hook only fires on its own name)."""
    kb = scene.fresh_kb("inert")
    scene.use_folder("base")
    done = _cli(*scene.command("remove", kb), fault="no_such_point")
    assert done.returncode == 0, done.stderr
    assert _problems(kb, healed_too=True) == []


def test_a_stale_faiss_file_copied_back_is_detected_and_healed(tmp_path: Path) -> None:
    """A valid FAISS file of an older generation over the current one: the check names it, open heals it
    (searches see every document), and the next write replaces it."""
    folder = tmp_path / "docs"
    folder.mkdir()
    make_pdf(folder / "one.pdf", ["The harbour handled 7000 containers in May."])
    kb_dir = tmp_path / "kb"
    assert _cli("ingest", str(folder), "--kb", str(kb_dir), *FAKE, "--quiet").returncode == 0
    old = (kb_dir / "index" / "text.faiss").read_bytes()
    make_pdf(folder / "two.pdf", ["The lighthouse keeper logged 12 storms in the winter."])
    assert _cli("ingest", str(folder), "--kb", str(kb_dir), *FAKE, "--quiet").returncode == 0
    (kb_dir / "index" / "text.faiss").write_bytes(old)

    kb = KnowledgeBase.open(kb_dir, SETTINGS)
    problems = kb.check()
    assert [p.kind for p in problems] == ["index"] and problems[0].healed and "stale" in problems[0].detail
    index = kb.index("text")
    assert index is not None and sorted(index.ids().tolist()) == kb.catalog.vector_ids("text").tolist()
    query = kb.models.text.embed(["lighthouse keeper logged storms"])
    _, ids = index.search(query, 1)
    assert kb.catalog.get_chunks([int(ids[0][0])])[int(ids[0][0])].doc_name == "two.pdf"
    kb.close()
    KnowledgeBase.open(kb_dir, SETTINGS, writable=True).close()  # any write saves the current index
    assert _problems(kb_dir, healed_too=True) == []


def test_a_pre_reindex_faiss_file_is_rebuilt_not_synced(tmp_path: Path) -> None:
    """After a reindex to another model of the same dimension, the old FAISS file has the same ids and another
    model's vectors: syncing by ids would keep them. The vectors epoch makes open rebuild it."""
    from retrieval.fakes import HashEmbedder

    class Flipped(HashEmbedder):  # another model, same dimension: every vector negated
        def embed(self, texts: Any) -> np.ndarray:
            return -np.asarray(super().embed(texts))

    def factory(role: str, spec: str) -> Any:
        return Flipped() if spec == "flipped" else HashEmbedder()

    folder = tmp_path / "docs"
    folder.mkdir()
    make_pdf(folder / "one.pdf", ["The harbour handled 7000 containers in May.", "Cranes were renewed in June."])
    kb_dir = tmp_path / "kb"
    assert _cli("ingest", str(folder), "--kb", str(kb_dir), *FAKE, "--quiet").returncode == 0
    old = (kb_dir / "index" / "text.faiss").read_bytes()
    flipped = KBSettings(text_model="flipped", image_model="fake", tag_images=False)
    with KnowledgeBase.open(kb_dir, flipped, writable=True, factory=factory, check_manifest=False) as kb:
        kb.reindex()
    (kb_dir / "index" / "text.faiss").write_bytes(old)  # what a crash before the cache save leaves

    kb = KnowledgeBase.open(kb_dir, flipped, factory=factory)
    assert [p.healed for p in kb.check()] == [True]  # the stale cache, nothing else
    index = kb.index("text")
    assert index is not None
    ids = kb.catalog.vector_ids("text")
    stored = kb.catalog.load_vectors("text", ids.tolist(), index.dimension)
    held = np.vstack([index.index.reconstruct(int(i)) for i in ids])
    assert np.allclose(held, stored / np.linalg.norm(stored, axis=1, keepdims=True), atol=1e-5)
    kb.close()


def test_a_damaged_or_foreign_faiss_file_loads_as_absent(tmp_path: Path) -> None:
    """Truncated (a crash mid-write of a non-atomic copy), one flipped byte, the old sidecar format, another
    epoch or dimension: each loads as an empty index tagged -1 (rebuilt from the catalog), never a wrong one."""
    from retrieval.vectors import VectorIndex

    rng = np.random.default_rng(0)
    index = VectorIndex(16)
    index.add(np.arange(50), rng.standard_normal((50, 16)).astype(np.float32))
    path = tmp_path / "text.faiss"
    index.save(path, generation=9, epoch=4)
    good = path.read_bytes()
    loaded, generation = VectorIndex.load(path, 16, epoch=4)
    assert generation == 9 and sorted(loaded.ids().tolist()) == list(range(50))
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    variants = {"truncated": good[: len(good) // 2], "flipped": bytes(flipped), "empty": b""}
    for name, data in variants.items():
        path.write_bytes(data)
        loaded, generation = VectorIndex.load(path, 16, epoch=4)
        assert (generation, loaded.size) == (-1, 0), name
    path.write_bytes(good)
    assert VectorIndex.load(path, 16, epoch=5)[1] == -1  # saved before a reindex
    assert VectorIndex.load(path, 32, epoch=4)[1] == -1  # another dimension
    import faiss

    faiss.write_index(index.index, str(path))  # a bare FAISS file (the format before the trailer)
    assert VectorIndex.load(path, 16, epoch=4)[1] == -1


# -- kill -9 at arbitrary moments of a larger run ---------------------------------------------------------------
def _corpus(folder: Path, n: int) -> None:
    folder.mkdir()
    for i in range(n):
        pages = [f"Document {i} page {p} mentions topic {i * 7 + p} and the number {i * 1000 + p}.\n\n"
                 + "Filler sentence about ingestion robustness. " * 30 for p in range(1, 4)]
        make_pdf(folder / f"doc{i:03d}.pdf", pages)


def _ingest_cmd(folder: Path, kb: Path) -> list[str]:
    return [sys.executable, "-m", "assistant.cli", "ingest", str(folder), "--kb", str(kb), *FAKE, "--quiet", "--json"]


def _check_consistent(kb_dir: Path) -> dict[str, int]:
    assert _problems(kb_dir, healed_too=False) == []
    db = sqlite3.connect(kb_dir / "catalog.sqlite")
    # no half-ingested document: every page of every document has its chunks
    for doc_id, pages in db.execute("SELECT doc_id, pages FROM documents"):
        covered = db.execute("SELECT COUNT(DISTINCT page) FROM chunks WHERE doc_id=?", (doc_id,)).fetchone()[0]
        assert covered == pages
    docs = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    n_vectors = db.execute("SELECT COUNT(*) FROM vectors WHERE space='text'").fetchone()[0]
    db.close()
    return {"documents": docs, "vectors": n_vectors}


@pytest.mark.integration
def test_kill_minus_nine_at_several_points_never_corrupts(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    _corpus(folder, 60)
    reference = tmp_path / "reference"
    subprocess.run(_ingest_cmd(folder, reference), check=True, capture_output=True)
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
    assert kills >= 4, "the ingest finished before it could be killed"
    out = subprocess.run(_ingest_cmd(folder, kb_dir), check=True, capture_output=True, text=True)
    assert '"failed": 0' in out.stdout
    final = _check_consistent(kb_dir)
    assert final == expected
    assert _problems(kb_dir, healed_too=True) == []
    db_a = sqlite3.connect(reference / "catalog.sqlite")
    db_b = sqlite3.connect(kb_dir / "catalog.sqlite")
    q = "SELECT chunk_id FROM chunks ORDER BY chunk_id"
    assert [r[0] for r in db_a.execute(q)] == [r[0] for r in db_b.execute(q)]
