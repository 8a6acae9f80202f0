"""Distributed ingest on a real two-node Ray cluster (head 127.0.0.2, worker 127.0.0.3) against the local ingest.

A folder of real PDFs and photos from ../shared/data plus bad files (encrypted, corrupt, a parser hang, a memory
bomb, one over the size bound) is ingested locally and through `--engine ray://...`; the two KBs must be equal
chunk for chunk (documents, files and their errors, pages, chunk ids, texts, boxes, thumbnails and crops byte for
byte, vectors within float tolerance). A mail with attachments (a PDF with a figure, a DOCX, a forwarded message
with its own attachment, a corrupt PDF) gives the same KB on the cluster as locally, attachment documents and
their links to the message included. Then: a re-run ships only what is not unchanged; a node killed mid-run
loses nothing committed and a re-run ends equal to a clean KB; the CLI takes `--engine`; the real offline
default text model gives the same vectors on the cluster as locally.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.isolation import Limits
from retrieval.kb import KnowledgeBase
from retrieval.kb_writer import IngestReport, KBWriter, Progress
from retrieval.settings import KBSettings
from tests.conftest import SHARED_DATA, make_pdf, needs_data

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'citeline[ray]' (the tests/test_ray.py "
                                        "two-node suite did not run)")

from retrieval.ray_engine import RayEngine, RaySettings  # noqa: E402
from tests.ray_cluster import RayCluster  # noqa: E402
from tests.test_bad_input_e2e import hang_pdf, memory_pdf  # noqa: E402
from tests.test_ingest_engine import mail_with_attachments  # noqa: E402

pytestmark = [pytest.mark.integration, needs_data("pdfs"), needs_data("coco-mini")]
PDFS, PHOTOS = SHARED_DATA / "pdfs", SHARED_DATA / "coco-mini" / "images"
LIMITS = Limits(seconds_per_file=10, memory_bytes=384 * 1024**2, max_file_bytes=int(1.5 * 1024**2), workers=2)
FAKE = KBSettings(text_model="fake", image_model="fake", tag_images=False, limits=LIMITS)
GOOD_PDFS = ("pdfminer__dmca.pdf", "pypdf__pdflatex-4-pages.pdf", "pypdf__pdflatex-image.pdf",
             "pdfminer__naacl06-shinyama.pdf", "pypdf__crazyones-pdfa.pdf")
BAD = {  # file -> what its per-file error must say
    "locked.pdf": "is encrypted",
    "invalid.pdf": "not a readable PDF",
    "hang.pdf": "longer than the 10 s per-file time bound",
    "memory.pdf": "384 MiB per-file memory bound",
    "huge.pdf": "per-file size bound",
}


# -- the cluster and the folder ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def cluster() -> Any:
    c = RayCluster(cpus_per_node=2)
    try:
        c.start()
        c.add_node("127.0.0.3")
        c.wait_nodes(2)
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="session")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ray-docs") / "docs"
    root.mkdir()
    for name in GOOD_PDFS:
        shutil.copyfile(PDFS / name, root / name)
    for photo in sorted(PHOTOS.iterdir())[:2]:
        shutil.copyfile(photo, root / photo.name)
    shutil.copyfile(PDFS / "pdfminer__aes-128.pdf", root / "locked.pdf")
    shutil.copyfile(PDFS / "ocrmypdf__invalid.pdf", root / "invalid.pdf")
    shutil.copyfile(PDFS / "pypdf__GeoTopo-komprimiert.pdf", root / "huge.pdf")
    hang_pdf(root / "hang.pdf")
    memory_pdf(root / "memory.pdf")
    return root


def ingest(kb_dir: Path, paths: list[Path], settings: KBSettings, engine: RayEngine | None = None,
           progress: Any = None) -> IngestReport:
    with KnowledgeBase.open(kb_dir, settings, writable=True) as kb:
        return KBWriter(kb, progress=progress, engine=engine).run([str(p) for p in paths])


def engine(cluster: RayCluster, **options: Any) -> RayEngine:
    return RayEngine(replace(RaySettings.from_uri(cluster.uri), **options))


# -- what a KB holds ----------------------------------------------------------------------------------------------
def snapshot(kb_dir: Path, settings: KBSettings) -> dict[str, Any]:
    """Everything a KB holds, keyed by content (row ids depend on the order documents were committed in)."""
    kb = KnowledgeBase.open(kb_dir, settings)
    try:
        db = kb.catalog.db
        chunk_cols = "chunk_id, doc_id, page, kind, text, bbox, section, ocr, figure_path, tokens, meta"
        ids = {row[0]: row[1] for row in db.execute("SELECT id, chunk_id FROM chunks")}
        vectors = {}
        for space in kb.spaces():
            rows = db.execute("SELECT id, vec FROM vectors WHERE space=?", (space,)).fetchall()
            vectors[space] = {ids[i]: np.frombuffer(v, dtype=np.float32) for i, v in rows}
        assets = {p.relative_to(kb.assets_dir).as_posix(): p.read_bytes()
                  for p in sorted(kb.assets_dir.rglob("*")) if p.is_file()}
        return {
            "documents": db.execute("SELECT doc_id, sha256, kind, name, title, author, pages, bytes, outline, "
                                    "metadata FROM documents ORDER BY doc_id").fetchall(),
            "files": db.execute("SELECT path, doc_id, sha256, status, error FROM files ORDER BY path").fetchall(),
            "pages": db.execute("SELECT * FROM pages ORDER BY doc_id, number").fetchall(),
            "chunks": db.execute(f"SELECT {chunk_cols} FROM chunks ORDER BY chunk_id").fetchall(),
            "spaces": kb.spaces(),
            "vectors": vectors,
            "assets": assets,
            "problems": [f"{p.kind}: {p.detail}" for p in kb.check() if not p.healed],
        }
    finally:
        kb.close()


def assert_same_kb(left: dict[str, Any], right: dict[str, Any], atol: float = 1e-6) -> None:
    for key in ("documents", "files", "pages", "chunks", "spaces"):
        assert left[key] == right[key], key
    assert left["assets"].keys() == right["assets"].keys()
    assert all(left["assets"][k] == right["assets"][k] for k in left["assets"]), "asset bytes differ"
    assert left["vectors"].keys() == right["vectors"].keys()
    for space, rows in left["vectors"].items():
        assert rows.keys() == right["vectors"][space].keys(), space
        for chunk_id, vec in rows.items():
            np.testing.assert_allclose(vec, right["vectors"][space][chunk_id], atol=atol, err_msg=chunk_id)
    assert left["problems"] == right["problems"] == []


# -- the tests ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def local_kb(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    kb_dir = tmp_path_factory.mktemp("local") / "kb"
    report = ingest(kb_dir, [folder], FAKE)
    return {"dir": kb_dir, "report": report, "state": snapshot(kb_dir, FAKE)}


def test_two_node_ray_ingest_equals_the_local_one_chunk_for_chunk(cluster: RayCluster, folder: Path,
                                                                   local_kb: dict[str, Any], tmp_path: Path) -> None:
    eng = engine(cluster)
    seen: list[Progress] = []
    report = ingest(tmp_path / "kb", [folder], FAKE, eng, seen.append)
    by_name = {Path(f.path).name: f for f in report.files}
    for name, phrase in BAD.items():
        assert by_name[name].status == "failed" and phrase in (by_name[name].error or ""), by_name[name]
    assert report.totals["ingested"] == len(GOOD_PDFS) + 2
    assert _no_seconds(report) == _no_seconds(local_kb["report"])  # the same JSON report, file for file
    assert_same_kb(snapshot(tmp_path / "kb", FAKE), local_kb["state"])
    stats = eng.last_stats
    assert set(stats.embedded_on) == {"127.0.0.2", "127.0.0.3"}, stats  # one actor per node
    assert stats.files == len(GOOD_PDFS) + 2 + len(BAD) - 1  # huge.pdf never left the driver
    assert seen[-1].files_done == seen[-1].files_total == len(report.files)


# DOCX read without LibreOffice: fast under the 10 s bound on a busy machine, and its pages byte-stable
MAIL_SETTINGS = replace(FAKE, parse=replace(FAKE.parse, render_office=False))


def test_a_mail_ingested_on_ray_keeps_its_attachments_as_the_local_ingest_does(cluster: RayCluster,
                                                                               tmp_path: Path) -> None:
    from assistant.answer import AnswerSettings
    from assistant.config import Settings
    from assistant.sdk import Citeline
    from retrieval.attachments import parents

    docs = tmp_path / "docs"
    mail = mail_with_attachments(docs / "inspection.eml")
    shutil.copyfile(PDFS / GOOD_PDFS[1], docs / "plain.pdf")
    local = ingest(tmp_path / "local", [docs], MAIL_SETTINGS)
    eng = engine(cluster)
    remote = ingest(tmp_path / "ray", [docs], MAIL_SETTINGS, eng)
    assert _no_seconds(remote) == _no_seconds(local)  # attachment counts and per-attachment errors included
    (result,) = [f for f in remote.files if f.path == str(mail)]
    assert result.status == "ingested" and result.attachments == 5, result
    assert [e.split(": ", 1)[0] for e in result.attachment_errors] == ["broken.pdf"]
    assert eng.last_stats.files == 2  # the message and the PDF; the attachments travelled inside the message
    state = snapshot(tmp_path / "ray", MAIL_SETTINGS)
    assert_same_kb(state, snapshot(tmp_path / "local", MAIL_SETTINGS))
    rows = {name: (doc_id, json.loads(meta)) for doc_id, _, _, name, *_, meta in state["documents"]}
    assert set(rows) == {"plain.pdf", "inspection.eml"} | {f"inspection.eml › {n}" for n in (
        "figure.pdf", "dmca.pdf", "memo.docx", "fwd.eml", "fwd.eml › notes.txt")}
    mail_id = rows["inspection.eml"][0]
    assert rows["inspection.eml"][1]["attachment_ids"].split("; ") == [
        rows[f"inspection.eml › {n}"][0] for n in ("figure.pdf", "dmca.pdf", "memo.docx", "fwd.eml")]
    assert any(a.startswith(f"{mail_id}/attachments/") for a in state["assets"])  # the figure's crop, shipped back
    chunk_docs = {row[1] for row in state["chunks"]}  # each attachment searchable in its own right
    assert {rows[f"inspection.eml › {n}"][0] for n in ("figure.pdf", "memo.docx", "fwd.eml › notes.txt")} <= chunk_docs
    with KnowledgeBase.open(tmp_path / "ray", MAIL_SETTINGS) as kb:
        links = parents(kb.store, [doc_id for doc_id, _ in rows.values()])
    fwd_id = rows["inspection.eml › fwd.eml"][0]
    expected = {rows[f"inspection.eml › {n}"][0]: (mail_id, "inspection.eml")
                for n in ("figure.pdf", "dmca.pdf", "memo.docx", "fwd.eml")}
    expected[rows["inspection.eml › fwd.eml › notes.txt"][0]] = (fwd_id, "inspection.eml › fwd.eml")
    assert {child: (link.doc_id, link.name) for child, link in links.items()} == expected
    settings = Settings(kb_dir=tmp_path / "ray", kb=MAIL_SETTINGS, answer=AnswerSettings())
    with Citeline(tmp_path / "ray", settings=settings) as sdk:  # a hit on an attachment names its message
        hit = next(h for h in sdk.search("What is the freezer alarm code?", top_k=5) if "7731" in h.text)
    assert hit.attached_to is not None and hit.attached_to.name == "inspection.eml › fwd.eml"
    assert hit.to_json()["attached_to"]["doc_id"] == fwd_id


def _no_seconds(report: IngestReport) -> list[dict[str, Any]]:
    return [dict(f.to_json(), seconds=0) for f in report.files]


def test_a_rerun_ships_only_what_is_not_unchanged(cluster: RayCluster, folder: Path, tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    for name in GOOD_PDFS[:2]:
        shutil.copyfile(PDFS / name, good / name)
    eng = engine(cluster)
    first = ingest(tmp_path / "kb", [good], FAKE, eng)
    assert first.totals["ingested"] == 2
    second = ingest(tmp_path / "kb", [good], FAKE, eng)
    assert second.totals["unchanged"] == 2 and eng.last_stats.files == 0  # nothing was shipped
    shutil.copyfile(PDFS / "pdfminer__aes-128.pdf", good / "locked.pdf")
    third = ingest(tmp_path / "kb", [good], FAKE, eng)
    assert [f.status for f in third.files] == ["failed", "unchanged", "unchanged"]
    assert eng.last_stats.files == 1  # only the new file went to the cluster


def test_the_cli_takes_an_engine(cluster: RayCluster, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "a.pdf", ["The heliotrope semaphore bulletin is out."])
    cmd = [sys.executable, "-m", "assistant.cli", "ingest", str(docs), "--kb", str(tmp_path / "kb"),
           "--text-model", "fake", "--image-model", "fake", "--engine", cluster.uri, "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=cluster.env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["totals"]["ingested"] == 1 and report["files"][0]["chunks"] >= 1
    assert "1/1 files" in done.stderr  # the progress lines, as a local ingest prints them
    bad = subprocess.run(cmd[:-3] + ["--engine", "spark://x:1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown ingest engine" in bad.stderr


@pytest.mark.slow
@pytest.mark.parametrize("attempts", [3, 1], ids=["retried", "reported"])
def test_a_node_killed_mid_run_loses_nothing_and_a_rerun_completes(cluster: RayCluster, tmp_path: Path,
                                                                   attempts: int) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(16):
        make_pdf(docs / f"doc{i:02d}.pdf", [f"Report {i} on the kumquat harvest, page {p}. " * 40 for p in range(6)])
    clean = ingest(tmp_path / "clean", [docs], FAKE)
    assert clean.totals["ingested"] == 16
    killed: list[int] = []

    def kill_after_two(p: Progress) -> None:
        if p.status == "ingested" and p.files_done >= 2 and not killed:
            killed.append(p.files_done)
            cluster.kill_node("127.0.0.3")

    # a parse or embed call the dead node took with it and Ray never fails is lost work after 60 s
    eng = engine(cluster, attempts=attempts, task_timeout_s=60.0)
    try:
        first = ingest(tmp_path / "kb", [docs], FAKE, eng, kill_after_two)
        assert killed, "the node was never killed"
        assert {f.status for f in first.files} <= {"ingested", "failed"} and len(first.files) == 16
        stats = eng.last_stats
        assert stats.retried + stats.lost >= 1, stats  # the kill cost in-flight work, and the run went on
        failed = [f for f in first.files if f.status == "failed"]
        assert len(failed) == stats.lost  # a file is failed only when every attempt at it died
        assert all("the Ray workers handling it died" in (f.error or "") for f in failed)
        # the re-run is planned from the cluster's view of its nodes: wait until that view has lost the dead one
        # (on a loaded machine the health checks can take a while to mark it)
        cluster.wait_nodes(1, timeout_s=120.0)
        second = ingest(tmp_path / "kb", [docs], FAKE, eng)
        assert {f.status for f in second.files} <= {"ingested", "unchanged"}
        assert_same_kb(snapshot(tmp_path / "kb", FAKE), snapshot(tmp_path / "clean", FAKE))
    finally:
        if "127.0.0.3" not in cluster.nodes:
            cluster.add_node("127.0.0.3")
            cluster.wait_nodes(2)


@pytest.mark.slow
def test_the_offline_default_models_give_the_local_vectors_on_the_cluster(cluster: RayCluster, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in GOOD_PDFS[1:3]:
        shutil.copyfile(PDFS / name, docs / name)
    shutil.copyfile(sorted(PHOTOS.iterdir())[0], docs / "photo.jpg")
    real = KBSettings(limits=replace(LIMITS, seconds_per_file=120, memory_bytes=3 * 1024**3))  # MiniLM-q8, tagger
    local = ingest(tmp_path / "local", [docs], real)
    eng = engine(cluster)
    remote = ingest(tmp_path / "ray", [docs], real, eng)
    assert local.totals["ingested"] == remote.totals["ingested"] == 3
    left, right = snapshot(tmp_path / "ray", real), snapshot(tmp_path / "local", real)
    assert left["spaces"]["text"]["model"] == "minilm-q8"
    assert_same_kb(left, right, atol=1e-4)
