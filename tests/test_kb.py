"""The knowledge base as a user sees it: incremental ingest, replace, prune, remove, lock, provenance."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.sdk import Citeline
from retrieval.errors import EmbedderMismatch, KBLocked
from retrieval.kb import KnowledgeBase
from retrieval.lock import WriterLock
from retrieval.settings import KBSettings
from tests.conftest import make_pdf

PAGES = [
    "The Aurora X2 battery lasts 14 hours of continuous playback.\n\nCharging takes 90 minutes with the USB-C adapter.",
    "The warranty covers manufacturing defects for two years.\n\nWater resistance is rated IP67.",
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    make_pdf(d / "manual.pdf", PAGES, title="Aurora X2 manual")
    (d / "notes.md").write_text("# Release notes\n\nVersion 2 adds a dark mode.\n\nBluetooth 5.3 is supported.\n")
    (d / "readme.xyz").write_text("not a supported type")
    return d


def _sdk(tmp_path: Path, settings: KBSettings) -> Citeline:
    from assistant.config import Settings

    return Citeline(tmp_path / "kb", settings=Settings(kb_dir=tmp_path / "kb", kb=settings))


def test_ingest_then_unchanged_then_replace_then_prune(tmp_path: Path, folder: Path, fake_kb_settings: KBSettings):
    sdk = _sdk(tmp_path, fake_kb_settings)
    report = sdk.ingest(folder).last_report
    assert report is not None
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["manual.pdf"].status == "ingested" and by_name["manual.pdf"].pages == 2
    assert by_name["notes.md"].status == "ingested"
    assert by_name["readme.xyz"].status == "skipped" and "unsupported" in (by_name["readme.xyz"].error or "")
    first = sdk.status()
    assert first["counts"]["documents"] == 2
    assert first["spaces"]["text"]["vectors"] == first["counts"]["chunks"] + first["counts"]["figures"]

    again = sdk.ingest(folder).last_report
    assert again is not None
    assert {f.status for f in again.files if not f.path.endswith(".xyz")} == {"unchanged"}
    assert sdk.status()["generation"] == first["generation"]  # nothing was written

    time.sleep(0.01)
    (folder / "notes.md").write_text("# Release notes\n\nVersion 3 adds offline maps.\n")
    third = sdk.ingest(folder).last_report
    assert third is not None
    assert {Path(f.path).name: f.status for f in third.files}["notes.md"] == "ingested"
    assert sdk.status()["counts"]["documents"] == 2  # replaced, not duplicated
    texts = [r[0] for r in sqlite3.connect(tmp_path / "kb" / "catalog.sqlite").execute("SELECT text FROM chunks")]
    assert any("offline maps" in t for t in texts) and not any("dark mode" in t for t in texts)

    (folder / "notes.md").unlink()
    assert sdk.ingest(folder).last_report.pruned == []  # type: ignore[union-attr]  # no --prune: kept
    assert sdk.status()["counts"]["documents"] == 2
    pruned = sdk.ingest(folder, prune=True).last_report
    assert pruned is not None and pruned.pruned == [str((folder / "notes.md").resolve())]
    status = sdk.status()
    assert status["counts"]["documents"] == 1
    assert status["spaces"]["text"]["vectors"] == status["counts"]["chunks"] + status["counts"]["figures"]


def test_duplicate_content_is_indexed_once(tmp_path: Path, folder: Path, fake_kb_settings: KBSettings):
    (folder / "copy.pdf").write_bytes((folder / "manual.pdf").read_bytes())
    sdk = _sdk(tmp_path, fake_kb_settings)
    report = sdk.ingest(folder).last_report
    assert report is not None
    statuses = sorted(f.status for f in report.files if f.path.endswith(".pdf"))
    assert statuses == ["ingested", "unchanged"]
    assert sdk.status()["counts"]["documents"] == 2  # manual (+copy) and notes
    sdk.remove(folder / "copy.pdf")
    assert sdk.status()["counts"]["documents"] == 2  # the content is still held by manual.pdf
    sdk.remove(folder / "manual.pdf")
    assert sdk.status()["counts"]["documents"] == 1


def test_faiss_index_matches_catalog_and_search_finds_text(tmp_path: Path, folder: Path, fake_kb_settings):
    sdk = _sdk(tmp_path, fake_kb_settings)
    sdk.ingest(folder)
    kb = KnowledgeBase.open(tmp_path / "kb", fake_kb_settings)
    index = kb.index("text")
    assert index is not None
    assert sorted(index.ids().tolist()) == kb.catalog.vector_ids("text").tolist()
    query = kb.models.text.embed(["battery lasts 14 hours"])
    _, ids = index.search(query, 1)
    best = kb.catalog.get_chunks([int(ids[0][0])])[int(ids[0][0])]
    assert "14 hours" in best.chunk.text and best.chunk.page == 1 and best.doc_name == "manual.pdf"
    kb.close()


def test_writer_lock_names_holder_and_readers_still_work(tmp_path: Path, folder: Path, fake_kb_settings):
    sdk = _sdk(tmp_path, fake_kb_settings)
    sdk.ingest(folder)
    with WriterLock(tmp_path / "kb"):
        with pytest.raises(KBLocked, match=f"pid {os.getpid()}"):
            KnowledgeBase.open(tmp_path / "kb", fake_kb_settings, writable=True)
        reader = KnowledgeBase.open(tmp_path / "kb", fake_kb_settings)
        assert reader.catalog.counts()["documents"] == 2
        reader.close()


def test_opening_with_another_embedder_names_reindex(tmp_path: Path, folder: Path, fake_kb_settings):
    _sdk(tmp_path, fake_kb_settings).ingest(folder)
    other = KBSettings(text_model="minilm", image_model="fake", tag_images=False)
    with pytest.raises(EmbedderMismatch, match="citeline reindex"):
        KnowledgeBase.open(tmp_path / "kb", other)
    manifest = json.loads((tmp_path / "kb" / "manifest.json").read_text())
    assert manifest["spaces"]["text"]["model"] == "fake" and manifest["chunker"]["max_tokens"] > 0


def test_stale_faiss_file_is_healed_from_catalog(tmp_path: Path, folder: Path, fake_kb_settings):
    sdk = _sdk(tmp_path, fake_kb_settings)
    sdk.ingest(folder)
    faiss_path = tmp_path / "kb" / "index" / "text.faiss"
    faiss_path.write_bytes(b"garbage")  # a damaged cache
    kb = KnowledgeBase.open(tmp_path / "kb", fake_kb_settings)
    index = kb.index("text")
    assert index is not None and index.size == len(kb.catalog.vector_ids("text")) > 0
    kb.close()


def test_cli_ingest_json_status_remove(tmp_path: Path, folder: Path, capsys: pytest.CaptureFixture[str]):
    kb = str(tmp_path / "kb")
    code = main(["ingest", str(folder), "--kb", kb, "--text-model", "fake", "--image-model", "fake", "--json",
                 "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["totals"]["ingested"] == 2 and out["totals"]["skipped"] == 1
    assert {f["status"] for f in out["files"]} == {"ingested", "skipped"}
    assert set(out["files"][0]) >= {"path", "status", "pages", "chunks", "figures", "error"}
    assert main(["status", "--kb", kb, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["counts"]["documents"] == 2
    assert main(["remove", str(folder / "notes.md"), "--kb", kb]) == 0
    capsys.readouterr()
    assert main(["status", "--kb", kb, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["documents"] == 1


def test_cli_reports_missing_kb_and_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["status", "--kb", str(tmp_path / "nope")]) == 2
    assert "citeline ingest" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "missing"), "--kb", str(tmp_path / "kb"), "--text-model", "fake"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_reindex_switches_the_text_model_and_keeps_every_chunk(tmp_path: Path, folder: Path, fake_kb_settings):
    from assistant.config import Settings

    _sdk(tmp_path, fake_kb_settings).ingest(folder)
    before = KnowledgeBase.open(tmp_path / "kb", fake_kb_settings)
    n_chunks = len(before.catalog.vector_ids("text"))
    before.close()
    switched = KBSettings(text_model="minilm-int8", image_model="fake", tag_images=False)
    counts = Citeline(tmp_path / "kb", settings=Settings(kb_dir=tmp_path / "kb", kb=switched)).reindex()
    assert counts["text"] == n_chunks
    kb = KnowledgeBase.open(tmp_path / "kb", switched)  # no EmbedderMismatch any more
    assert kb.manifest["spaces"]["text"] == {"model": "minilm-int8", "dimension": 384, "normalized": True,
                                             "metric": "inner_product"}
    index = kb.index("text")
    assert index is not None and index.size == n_chunks
    _, ids = index.search(kb.models.text.embed(["How long does the battery last?"]), 1)
    assert "14 hours" in kb.catalog.get_chunks([int(ids[0][0])])[int(ids[0][0])].chunk.text
    kb.close()
    with pytest.raises(EmbedderMismatch, match="citeline reindex"):
        KnowledgeBase.open(tmp_path / "kb", fake_kb_settings)


def test_parallel_parser_workers_build_the_same_kb(tmp_path: Path, fake_kb_settings: KBSettings):
    """Two parser processes (the default) and one give the same documents, chunks and vectors; every worker
    process is gone afterwards."""
    from dataclasses import replace

    import psutil

    from ingest.isolation import Limits

    docs = tmp_path / "many"
    docs.mkdir()
    for i in range(6):  # different sizes: the smallest is parsed first, results still land per document
        make_pdf(docs / f"doc{i}.pdf",
                 [f"Report {i} says the harbour handled {i * 1000 + 7} containers. " * (1 + i)] * 2)
    kbs = {}
    for workers in (1, 2):
        settings = replace(fake_kb_settings, limits=Limits(workers=workers))
        sdk = Citeline(tmp_path / f"kb{workers}", settings=_settings(tmp_path / f"kb{workers}", settings))
        report = sdk.ingest(docs).last_report
        assert report is not None and report.totals["ingested"] == 6
        db = sqlite3.connect(tmp_path / f"kb{workers}" / "catalog.sqlite")
        kbs[workers] = sorted(db.execute("SELECT chunk_id, doc_id, page, text FROM chunks"))
        db.close()
        sdk.close()
    assert kbs[1] == kbs[2] and len(kbs[1]) >= 12
    me = psutil.Process()
    assert not [p for p in me.children(recursive=True) if "ingest.worker" in " ".join(p.cmdline())]


def _settings(kb_dir: Path, kb: KBSettings):  # type: ignore[no-untyped-def]
    from assistant.config import Settings

    return Settings(kb_dir=kb_dir, kb=kb)


def test_a_file_with_nothing_searchable_is_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """A blank PDF ingests cleanly but gives nothing to search: the report says so instead of a silent 0."""
    import pymupdf

    docs = tmp_path / "in"
    docs.mkdir()
    blank = pymupdf.open()
    blank.new_page()
    blank.new_page()
    blank.save(docs / "blank.pdf")
    make_pdf(docs / "real.pdf", PAGES)
    kb = str(tmp_path / "kb")
    assert main(["ingest", str(docs), "--kb", kb, "--text-model", "fake", "--image-model", "fake", "--json",
                 "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    files = {Path(f["path"]).name: f for f in out["files"]}
    assert files["blank.pdf"]["status"] == "ingested" and files["blank.pdf"]["chunks"] == 0
    assert "nothing searchable" in files["blank.pdf"]["warning"]
    assert files["real.pdf"]["warning"] is None and out["totals"]["empty"] == 1
    main(["ingest", str(docs / "blank.pdf"), "--kb", str(tmp_path / "kb2"), "--text-model", "fake",
          "--image-model", "fake", "--quiet"])
    assert "warning: nothing searchable" in capsys.readouterr().out


def test_cli_workers_option(tmp_path: Path, folder: Path, capsys: pytest.CaptureFixture[str]):
    kb = str(tmp_path / "kb")
    assert main(["ingest", str(folder), "--kb", kb, "--text-model", "fake", "--image-model", "fake", "--workers", "1",
                 "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["ingested"] == 2
    with pytest.raises(SystemExit) as exc:
        main(["ingest", str(folder), "--kb", kb, "--workers", "0"])
    assert exc.value.code == 2 and "at least 1" in capsys.readouterr().err


def test_lock_file_names_the_new_holder_over_a_longer_stale_one(tmp_path: Path):
    """The holder's record overwrites a longer one left by an earlier holder; the name read back is the new one."""
    (tmp_path / "lock").write_text(json.dumps({"pid": 1, "host": "h", "since": "s", "command": "x" * 500}))
    with WriterLock(tmp_path):
        with pytest.raises(KBLocked, match=f"being written by pid {os.getpid()} on "):
            WriterLock(tmp_path).acquire()
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()


def _ingested_kb(tmp_path: Path, folder: Path) -> Path:
    kb = tmp_path / "kb"
    assert main(["ingest", str(folder), "--kb", str(kb), "--text-model", "fake", "--image-model", "fake",
                 "--quiet"]) == 0
    return kb


def test_check_passes_a_clean_kb_and_names_each_kind_of_damage(tmp_path: Path, folder: Path,
                                                               capsys: pytest.CaptureFixture[str]):
    kb = _ingested_kb(tmp_path, folder)
    capsys.readouterr()
    assert main(["check", "--kb", str(kb), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []

    db = sqlite3.connect(kb / "catalog.sqlite")
    victim = db.execute("SELECT id FROM chunks ORDER BY id LIMIT 1").fetchone()[0]
    db.execute("DELETE FROM vectors WHERE id=?", (victim,))  # a chunk without its vector
    db.execute("INSERT INTO vectors(space, id, vec) VALUES('text', 99999, ?)", (bytes(4 * 64),))  # of no chunk
    thumb = db.execute("SELECT thumbnail FROM pages WHERE thumbnail IS NOT NULL LIMIT 1").fetchone()[0]
    db.commit()
    db.close()
    (kb / "assets" / thumb).unlink()
    (kb / "assets" / ("f" * 24)).mkdir()  # an asset folder of no document: a leftover, healed by the next write
    assert main(["check", "--kb", str(kb)]) == 1
    out = capsys.readouterr().out
    assert "1 chunks without their text vector" in out and "1 vectors of no chunk" in out
    assert "thumbnails or figure crops are missing" in out and "note: [leftover] 1 asset folders" in out
    # written behind the catalog's back (no generation bump): the FAISS cache no longer matches, and says so
    assert "the 'text' index does not match the catalog after healing: 1 ids too many, 1 missing" in out
    assert "4 problem(s)" in out


def test_a_writer_heals_what_a_crash_leaves_behind(tmp_path: Path, folder: Path, fake_kb_settings: KBSettings):
    """An old manifest.json, temporary files and orphan asset folders are notes for the check, gone after the
    next write; a missing FAISS cache is rebuilt."""
    kb_dir = _ingested_kb(tmp_path, folder)
    (kb_dir / "manifest.json").write_text("{}")
    (kb_dir / "manifest.json.tmp").write_text("{")
    (kb_dir / "index" / "text.faiss.tmp").write_bytes(b"half")
    (kb_dir / "index" / "text.faiss").unlink()
    (kb_dir / "assets" / ("0" * 24)).mkdir()
    kb = KnowledgeBase.open(kb_dir, fake_kb_settings)
    problems = kb.check()
    kb.close()
    assert len(problems) == 5 and all(p.healed for p in problems), problems
    KnowledgeBase.open(kb_dir, fake_kb_settings, writable=True).close()
    kb = KnowledgeBase.open(kb_dir, fake_kb_settings)
    assert kb.check() == []
    assert json.loads((kb_dir / "manifest.json").read_text()) == kb.manifest
    kb.close()


def test_a_file_deleted_after_discovery_is_a_per_file_error(tmp_path: Path, folder: Path,
                                                            fake_kb_settings: KBSettings):
    """Deleted between discovery and its size/hash check: that file fails with what to do, the run goes on."""
    from retrieval.kb_writer import KBWriter

    doomed, kept = folder / "manual.pdf", [folder / "notes.md"]
    with KnowledgeBase.open(tmp_path / "kb", fake_kb_settings, writable=True) as kb:
        ingestor = KBWriter(kb)
        real = ingestor._precheck_file

        def vanish_first(path: str):  # the real check, after the file is gone (as a racing `rm` would leave it)
            if path == str(doomed):
                doomed.unlink()
            return real(path)

        ingestor._precheck_file = vanish_first  # type: ignore[method-assign]
        report = ingestor.run([str(folder)])
    by_path = {f.path: f for f in report.files}
    assert by_path[str(doomed)].status == "failed" and "deleted or moved" in (by_path[str(doomed)].error or "")
    assert all(by_path[str(p)].status == "ingested" for p in kept)
