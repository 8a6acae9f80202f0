"""The store contract: the same tests for every backend (`local`: SQLite + FTS5 + FAISS in a folder; `postgres`:
a real PostgreSQL 18 + pgvector server started by the session fixture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.types import BBox, Chunk, Page, ParsedDocument
from retrieval.errors import EmbedderMismatch, KBLocked
from retrieval.kb import KnowledgeBase
from retrieval.kb_writer import KBWriter
from retrieval.search import Searcher
from retrieval.settings import KBSettings
from retrieval.types import SearchFilters
from tests.conftest import make_pdf

BACKENDS = ["local", "postgres"]
PAGES = [
    "The Aurora X2 battery lasts 14 hours of continuous playback.\n\nCharging takes 90 minutes with the USB-C adapter.",
    "The warranty covers manufacturing defects for two years.\n\nWater resistance is rated IP67.",
    "Pairing uses Bluetooth 5.3 with two devices at once.\n\nThe case weighs 48 grams.",
]
SETTINGS = KBSettings(text_model="fake", image_model="fake", tag_images=False, ocr=False)


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "kb")
    return str(request.getfixturevalue("pg_dsn"))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    make_pdf(d / "manual.pdf", PAGES, title="Aurora X2 manual")
    (d / "notes.md").write_text("# Release notes\n\nVersion 2 adds a dark mode.\n\nBluetooth 5.3 is supported.\n")
    (d / "cooking.txt").write_text("Simmer the tomato sauce for forty minutes.\n\nAdd basil at the end.\n")
    return d


def _open(location: str, tmp_path: Path, **kw: object) -> KnowledgeBase:
    return KnowledgeBase.open(location, SETTINGS, assets_dir=tmp_path / "assets", **kw)  # type: ignore[arg-type]


def _ingest(location: str, tmp_path: Path, *paths: Path) -> None:
    with _open(location, tmp_path, writable=True) as kb:
        report = KBWriter(kb).run([str(p) for p in paths])
        assert report.totals["failed"] == 0, report.to_json()


def test_write_and_read_documents_pages_chunks_vectors(location: str, tmp_path: Path, docs: Path):
    _ingest(location, tmp_path, docs)
    with _open(location, tmp_path) as kb:
        store = kb.store
        names = sorted(d.name for d in store.documents())
        assert names == ["cooking.txt", "manual.pdf", "notes.md"]
        manual = next(d for d in store.documents() if d.name == "manual.pdf")
        assert manual.pages == 3 and manual.paths == (str(docs / "manual.pdf"),)
        counts = store.counts()
        assert counts["documents"] == 3 and counts["pages"] == 5 and counts["chunks"] >= 5
        ids = store.chunk_ids(manual.doc_id)
        chunks = store.get_chunks(ids)
        assert [chunks[i].chunk.page for i in ids] == sorted(chunks[i].chunk.page for i in ids)
        assert all(chunks[i].doc_name == "manual.pdf" for i in ids)
        assert "14 hours" in store.page_texts(manual.doc_id, 1)[1]
        page = store.page(manual.doc_id, 2)
        assert page is not None and page["doc_name"] == "manual.pdf" and page["width"] > 0
        assert page["path"] == str(docs / "manual.pdf")
        vector_ids = store.vector_ids("text")
        assert sorted(vector_ids.tolist()) == sorted(store.chunk_ids())
        d = int(kb.spaces()["text"]["dimension"])
        vectors = store.load_vectors("text", ids[:2], d)
        assert vectors.shape == (2, d) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
        assert store.file_row(str(docs / "notes.md"))["status"] == "ingested"  # type: ignore[index]
        assert kb.check() == []


def test_search_with_and_without_filters(location: str, tmp_path: Path, docs: Path):
    _ingest(location, tmp_path, docs)
    with _open(location, tmp_path) as kb:
        searcher = Searcher(kb)
        hits = searcher.search("battery hours playback", top_k=5)
        assert hits and hits[0].doc_name == "manual.pdf" and "14 hours" in hits[0].text
        assert "dense" in hits[0].retrievers and "bm25" in hits[0].retrievers
        only = searcher.search("battery hours playback", top_k=5, filters=SearchFilters(docs=("cooking.txt",)))
        assert only and {h.doc_name for h in only} == {"cooking.txt"}
        pages = searcher.search("warranty defects", top_k=5, filters=SearchFilters(docs=("manual.pdf",), pages=(2, 3)))
        assert pages and {h.page for h in pages} <= {2, 3} and pages[0].page == 2
        by_glob = searcher.search("sauce", top_k=5, filters=SearchFilters(path_glob="*/cooking.*"))
        assert by_glob and {h.doc_name for h in by_glob} == {"cooking.txt"}
        assert searcher.search("sauce", top_k=5, filters=SearchFilters(file_types=("image",))) == []
        page_hits = searcher.search("warranty defects", top_k=3, level="page")
        assert page_hits[0].kind == "page" and (page_hits[0].doc_name, page_hits[0].page) == ("manual.pdf", 2)


def test_lexical_search_and_stop_words(location: str, tmp_path: Path, docs: Path):
    _ingest(location, tmp_path, docs)
    with _open(location, tmp_path) as kb:
        found = kb.store.lexical_search("basil tomato", 5)
        assert found and kb.store.get_chunks([found[0][0]])[found[0][0]].doc_name == "cooking.txt"
        assert found == sorted(found, key=lambda r: -r[1])
        assert kb.store.lexical_search("the and of", 5) == []  # stop words only
        assert kb.store.lexical_search('AND OR "NEAR*:', 5) == []  # query syntax is plain text
        pages = kb.store.lexical_pages("warranty", 5)
        assert pages and pages[0][:2] == (next(d.doc_id for d in kb.store.documents() if d.name == "manual.pdf"), 2)


def test_remove_forgets_rows_vectors_and_hits(location: str, tmp_path: Path, docs: Path):
    _ingest(location, tmp_path, docs)
    with _open(location, tmp_path, writable=True) as kb:
        before = len(kb.store.vector_ids("text"))
        removed = kb.remove([str(docs / "cooking.txt")])
        assert removed == [str(docs / "cooking.txt")]
        assert "cooking.txt" not in {d.name for d in kb.store.documents()}
        assert len(kb.store.vector_ids("text")) < before
        assert all(h.doc_name != "cooking.txt" for h in Searcher(kb).search("tomato sauce basil", top_k=10))
        assert kb.check() == []


def test_reindex_replaces_vectors_and_bumps_the_epoch(location: str, tmp_path: Path, docs: Path):
    _ingest(location, tmp_path, docs)
    with _open(location, tmp_path, writable=True) as kb:
        ids = sorted(kb.store.vector_ids("text").tolist())
        counts = kb.reindex()
        assert counts["text"] == len(ids) and sorted(kb.store.vector_ids("text").tolist()) == ids
        assert int(kb.store.get_meta("vectors_epoch") or 0) == kb.store.generation
        assert Searcher(kb).search("battery playback", top_k=3)[0].doc_name == "manual.pdf"
        assert kb.check() == []


def test_manifest_mismatch_names_reindex(location: str, tmp_path: Path, docs: Path):
    _ingest(location, tmp_path, docs)
    with pytest.raises(EmbedderMismatch, match="citeline reindex"):
        KnowledgeBase.open(location, KBSettings(text_model="minilm-q8", image_model="fake", tag_images=False),
                           assets_dir=tmp_path / "assets")


def test_one_writer_at_a_time(location: str, tmp_path: Path):
    with _open(location, tmp_path, writable=True), pytest.raises(KBLocked, match="pid"):
        _open(location, tmp_path, writable=True)
    _open(location, tmp_path, writable=True).close()  # freed on close


def test_a_failed_transaction_leaves_nothing(location: str, tmp_path: Path):
    doc = ParsedDocument(path="/x/a.txt", sha256="ab" * 32, kind="text", pages=(Page(1, 600, 800),))
    chunks = [Chunk(doc.doc_id, 1, "text", "alpha beta gamma", BBox(0, 0, 1, 1))]
    with _open(location, tmp_path, writable=True) as kb:
        kb.register_space("text", "fake", 8)
        generation = kb.store.generation
        with pytest.raises(RuntimeError), kb.store.transaction():
            kb.store.put_document(doc, "a.txt", 1, chunks, [{}], {"text": ([0], np.ones((1, 8), np.float32))})
            kb.store.put_file(doc.path, doc.doc_id, doc.sha256, 1, 0.0, "ingested")
            raise RuntimeError("killed mid-document")
        assert kb.store.documents() == [] and kb.store.files() == [] and kb.store.chunk_ids() == []
        assert len(kb.store.vector_ids("text")) == 0 and kb.store.generation == generation
        with kb.store.transaction():
            ids = kb.store.put_document(doc, "a.txt", 1, chunks, [{}], {"text": ([0], np.ones((1, 8), np.float32))})
        assert kb.store.generation == generation + 1 and kb.store.vector_ids("text").tolist() == ids
        assert kb.store.vector_search("text", np.ones(8, np.float32), 5) == ids


@pytest.mark.slow
def test_migrate_copies_a_local_kb_into_postgres_without_re_embedding(pg_dsn: str, tmp_path: Path, docs: Path,
                                                                      capsys: pytest.CaptureFixture[str]):
    import json

    from assistant.cli import main

    local = str(tmp_path / "kb")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    with _open(local, tmp_path, writable=True) as kb:
        KBWriter(kb).run([str(docs)])
    assert main(["migrate", "--from", local, "--to", pg_dsn, "--assets", str(tmp_path / "pg-assets"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["documents"] == 3 and report["skipped"] == 0 and report["files"] == 4
    with _open(local, tmp_path) as a, KnowledgeBase.open(pg_dsn, SETTINGS, assets_dir=tmp_path / "pg-assets") as b:
        assert a.store.counts() == b.store.counts() and a.manifest["spaces"] == b.manifest["spaces"]
        assert a.store.files() == b.store.files()
        texts = [sorted((c.doc_name, c.chunk.page, c.chunk.text, c.chunk.bbox)
                        for c in s.get_chunks(s.chunk_ids()).values())
                 for s in (a.store, b.store)]
        assert texts[0] == texts[1]
        for query in ("battery hours playback", "tomato basil", "warranty"):
            dense = [[(h.doc_name, h.page, h.text) for h in Searcher(kb).search(query, top_k=5, retrievers=["dense"])]
                     for kb in (a, b)]
            assert dense[0] == dense[1]
        assert b.check() == []
    with pytest.raises(EmbedderMismatch):  # the manifest came along: the embedder check still guards it
        KnowledgeBase.open(pg_dsn, KBSettings(text_model="minilm-q8"), assets_dir=tmp_path / "pg-assets")
    assert main(["migrate", "--from", local, "--to", pg_dsn, "--assets", str(tmp_path / "pg-assets"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] == 3  # a re-run skips what is there


def test_a_message_and_its_attachment_are_removed_together(location: str, tmp_path: Path):
    """An attachment is a document of its own held by its message (no file row): removing the message removes it,
    on every backend."""
    from email.message import EmailMessage

    d = tmp_path / "mail"
    d.mkdir()
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.org", "b@example.org", "Rota"
    msg.set_content("The rota is attached.")
    msg.add_attachment(b"The night shift starts at 22:00 on Fridays.\n", maintype="text", subtype="plain",
                       filename="rota.txt")
    (d / "rota.eml").write_bytes(bytes(msg))
    _ingest(location, tmp_path, d)
    with _open(location, tmp_path) as kb:
        names = sorted(doc.name for doc in kb.store.documents())
        assert names == ["rota.eml", "rota.eml › rota.txt"]
        (hit,) = [h for h in Searcher(kb).search("When does the night shift start?", top_k=5)
                  if h.doc_name == "rota.eml › rota.txt"][:1]
        message = next(doc for doc in kb.store.documents() if doc.name == "rota.eml")
        assert hit.attached_to is not None and (hit.attached_to.doc_id, hit.attached_to.name) == (message.doc_id,
                                                                                                "rota.eml")
    with _open(location, tmp_path, writable=True) as kb:
        kb.remove([str(d / "rota.eml")])
    with _open(location, tmp_path) as kb:
        assert kb.store.documents() == [] and kb.store.counts()["chunks"] == 0
        assert kb.check() == []
