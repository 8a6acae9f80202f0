"""The pieces of the distributed ingest that need no cluster: shipping a file's bytes to be parsed elsewhere,
embedding a shipped document, the engine spec, and Ray's absence (tests/test_ray.py runs the real cluster)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ingest.attachments import parse_family
from ingest.errors import CorruptFile, MissingDependency
from ingest.isolation import IsolatedParser, Limits
from ingest.protocols import ParseOptions
from ingest.shipping import ShippedFile, close_parsers, parse_shipped, read_assets, write_assets
from retrieval.embedding import Vectors, chunker_for, embed_prepared, prepare_chunks
from retrieval.ingest_engine import build_engine
from retrieval.remote_embed import EmbedWorker
from retrieval.settings import KBSettings, ModelSet
from tests.conftest import SHARED_DATA, needs_data

FIGURE_PDF = SHARED_DATA / "pdfs" / "pypdf__pdflatex-image.pdf"
PAPER = SHARED_DATA / "pdfs" / "pdfminer__dmca.pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _shipped(path: Path) -> ShippedFile:
    data = path.read_bytes()
    return ShippedFile(str(path), hashlib.sha256(data).hexdigest(), data)


@pytest.fixture
def figure_pdf(tmp_path: Path) -> Path:
    if not FIGURE_PDF.exists():
        pytest.skip("public test data missing: ../shared/data/pdfs")
    target = tmp_path / "docs" / "with figure.pdf"
    target.parent.mkdir()
    shutil.copyfile(FIGURE_PDF, target)
    return target


@needs_data("pdfs")
def test_a_shipped_file_parses_as_the_local_parser_parses_it(figure_pdf: Path, tmp_path: Path) -> None:
    shipped = _shipped(figure_pdf)
    try:
        remote = parse_shipped(shipped, ParseOptions(assets_dir="/nonexistent"), Limits())
    finally:
        close_parsers()
    local_assets = tmp_path / "assets"
    with IsolatedParser() as parser:
        local = parser.parse(str(figure_pdf), shipped.sha256, ParseOptions(assets_dir=str(local_assets)))
    assert remote.error is None and remote.document == local  # the driver's path, the same pages and figures
    assert remote.assets == read_assets(local_assets) and remote.assets  # thumbnails and crops, byte for byte
    assert all(name.startswith(local.doc_id + "/") for name in remote.assets)


def mail_with_attachments(path: Path) -> Path:
    """A real message (the standard `email` package) carrying a PDF with a figure, a PDF of text, a DOCX, a
    forwarded message with its own attachment, and a corrupt PDF (a per-attachment error)."""
    from tests.test_mail import memo_docx, message

    forwarded = message("Alarm", "Forwarded for the record.", [
        ("notes.txt", b"The freezer alarm code is 7731.", "text/plain")])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(message("Warehouse inspection", "The details are in the attached files.", [
        ("figure.pdf", FIGURE_PDF.read_bytes(), "application/pdf"),
        ("dmca.pdf", PAPER.read_bytes(), "application/pdf"),
        ("memo.docx", memo_docx("The walk-in freezer is kept at minus 22 degrees Celsius."), DOCX),
        ("fwd.eml", bytes(forwarded), "message/rfc822"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj <<>> garbage", "application/pdf"),
    ])))
    return path


@needs_data("pdfs")
def test_a_shipped_mail_ships_back_its_attachments_as_the_local_ingest_parses_them(tmp_path: Path) -> None:
    mail = mail_with_attachments(tmp_path / "docs" / "inspection.eml")
    shipped = _shipped(mail)
    options = ParseOptions(assets_dir="/nonexistent", render_office=False)
    try:
        remote = parse_shipped(shipped, options, Limits())
    finally:
        close_parsers()
    local_assets = tmp_path / "assets"
    with IsolatedParser() as parser:
        local = parse_family(str(mail), shipped.sha256, replace(options, assets_dir=str(local_assets)), parser.parse)
    assert remote.error is None and remote.document == local.document and remote.attachments == local.attachments
    docs = {d.path: d for d in remote.attachments}
    assert set(docs) == {f"{mail} › {n}" for n in ("figure.pdf", "dmca.pdf", "memo.docx", "fwd.eml")} | {
        f"{mail} › fwd.eml › notes.txt"}
    meta = remote.document.metadata if remote.document else {}
    assert meta["attachments"] == "figure.pdf; dmca.pdf; memo.docx; fwd.eml"
    assert meta["attachment_ids"].split("; ") == [docs[f"{mail} › {n}"].doc_id
                                                  for n in ("figure.pdf", "dmca.pdf", "memo.docx", "fwd.eml")]
    assert meta["attachment_errors"].startswith("broken.pdf: ")  # listed under the message, as locally
    assert all(docs[f"{mail} › {n}"].metadata["parent"] == local.document.doc_id for n in ("figure.pdf", "memo.docx"))
    assert docs[f"{mail} › fwd.eml › notes.txt"].metadata["parent"] == docs[f"{mail} › fwd.eml"].doc_id
    # the attachments' crops and thumbnails, under the message's folder, byte for byte
    assert remote.assets == read_assets(local_assets)
    assert any(name.startswith(f"{local.document.doc_id}/attachments/") for name in remote.assets)
    assert "citeline-ship-" not in repr(remote)  # no temporary path of the node leaks into the documents


@needs_data("pdfs")
def test_the_embed_worker_embeds_every_attachment_as_the_local_ingest_does(tmp_path: Path) -> None:
    settings = KBSettings(text_model="fake", image_model="fake", tag_images=False)
    mail = mail_with_attachments(tmp_path / "docs" / "inspection.eml")
    options = ParseOptions(assets_dir="/nonexistent", render_office=False)
    try:
        parsed = parse_shipped(_shipped(mail), options, Limits())
    finally:
        close_parsers()
    done = EmbedWorker(settings, node="n1").embed(parsed)
    assert parsed.document is not None and done.document == parsed.document
    assert [a.document for a in done.attachments] == list(parsed.attachments) and len(done.attachments) == 5
    models = ModelSet(settings)
    assets = tmp_path / "assets"
    write_assets(assets, parsed.assets)
    spaces: list[tuple[str, str, int]] = []
    expected = [(done.chunks, done.meta, done.vectors)] + [(a.chunks, a.meta, a.vectors) for a in done.attachments]
    for doc, (chunks, meta, vectors) in zip((parsed.document, *parsed.attachments), expected, strict=True):
        prepared = prepare_chunks(models, assets, chunker_for(models).chunk(doc))
        local = embed_prepared(models, prepared, lambda *s: spaces.append(s))
        assert chunks == prepared.chunks and meta == prepared.meta, doc.path
        assert local.keys() == vectors.keys(), doc.path
        for space, (positions, matrix) in local.items():
            assert vectors[space][0] == positions
            np.testing.assert_allclose(vectors[space][1], matrix, atol=1e-6)
    assert done.spaces == tuple(dict.fromkeys(spaces)) and {s for s, _, _ in spaces} == {"text", "image"}
    assert any(a.chunks for a in done.attachments if a.document.kind == "docx")


@needs_data("pdfs")
def test_the_writer_commits_the_attachments_vectors_an_engine_shipped_without_embedding_them_again(
        tmp_path: Path) -> None:
    from collections.abc import Iterator, Sequence

    from ingest.parser_pool import ParseJob
    from retrieval.embedding import Prepared
    from retrieval.ingest_engine import ReadyDocument
    from retrieval.kb import KnowledgeBase
    from retrieval.kb_writer import KBWriter

    settings = KBSettings(text_model="fake", image_model="fake", tag_images=False,
                          parse=ParseOptions(assets_dir="", render_office=False))
    mail = mail_with_attachments(tmp_path / "docs" / "inspection.eml")

    def marked(vectors: Vectors) -> Vectors:  # every row the first unit vector: nothing a model would give
        return {s: (pos, np.eye(1, m.shape[1], dtype=np.float32).repeat(len(pos), 0))
                for s, (pos, m) in vectors.items()}

    class ShippingEngine:  # what the Ray engine hands the writer, without the cluster
        def documents(self, jobs: Sequence[ParseJob], options: ParseOptions,
                      kb: KBSettings) -> Iterator[ReadyDocument]:
            worker = EmbedWorker(kb)
            for job in jobs:
                done = worker.embed(parse_shipped(_shipped(Path(job.path)), options, kb.limits))
                assert done.document is not None
                write_assets(Path(options.assets_dir), done.assets)
                yield ReadyDocument(job, (done.document, Prepared(done.chunks, done.meta, [], None)),
                                    vectors=done.vectors, spaces=done.spaces,
                                    attachments=tuple((a.document, Prepared(a.chunks, a.meta, [], None))
                                                      for a in done.attachments),
                                    attachment_vectors=tuple(marked(a.vectors) for a in done.attachments))

    try:
        with KnowledgeBase.open(tmp_path / "kb", settings, writable=True) as kb:
            report = KBWriter(kb, engine=ShippingEngine()).run([str(mail.parent)])
            rows = kb.catalog.db.execute("SELECT d.name, v.vec FROM vectors v JOIN chunks c ON c.id = v.id "
                                         "JOIN documents d ON d.doc_id = c.doc_id WHERE v.space = 'text'").fetchall()
    finally:
        close_parsers()
    assert report.files[0].status == "ingested" and report.files[0].attachments == 5
    first = {name: np.frombuffer(vec, dtype=np.float32)[0] for name, vec in rows}
    assert {n for n in first if n != "inspection.eml"} >= {"inspection.eml › memo.docx", "inspection.eml › dmca.pdf"}
    for name, vec in rows:  # the attachments' vectors are the shipped ones, the message's its own
        unit = np.frombuffer(vec, dtype=np.float32)
        assert np.allclose(unit, np.eye(1, len(unit))[0]) == (name != "inspection.eml"), name


@needs_data("pdfs")
def test_a_shipped_encrypted_file_is_a_per_file_error_naming_the_drivers_path(tmp_path: Path) -> None:
    locked = tmp_path / "locked.pdf"
    shutil.copyfile(SHARED_DATA / "pdfs" / "pdfminer__aes-128.pdf", locked)
    try:
        out = parse_shipped(_shipped(locked), ParseOptions(assets_dir=str(tmp_path)), Limits())
    finally:
        close_parsers()
    assert out.document is None and out.error is not None
    assert out.error.message.startswith(f"{locked} is encrypted") and "--password" in out.error.message
    assert "citeline-ship-" not in out.error.message  # no temporary path of the node leaks into the report


def test_shipped_assets_cannot_land_outside_the_assets_folder(tmp_path: Path) -> None:
    write_assets(tmp_path / "assets", {"doc/p1.png": b"png"})
    assert (tmp_path / "assets" / "doc" / "p1.png").read_bytes() == b"png"
    for hostile in ("../escaped.png", "/tmp/absolute.png", "doc/../../escaped.png", "."):
        with pytest.raises(CorruptFile, match="outside the assets folder"):
            write_assets(tmp_path / "assets", {hostile: b"x"})
    assert not (tmp_path / "escaped.png").exists()


@needs_data("pdfs")
def test_the_embed_worker_gives_the_local_chunks_and_vectors(figure_pdf: Path) -> None:
    settings = KBSettings(text_model="fake", image_model="fake", tag_images=False)
    try:
        parsed = parse_shipped(_shipped(figure_pdf), ParseOptions(assets_dir="/nonexistent"), Limits())
    finally:
        close_parsers()
    worker = EmbedWorker(settings, node="n1")
    assert worker.ready().text_model == "hash-64"
    done = worker.embed(parsed)
    assert parsed.document is not None and done.document == parsed.document and done.node == "n1"
    models = ModelSet(settings)
    chunks = chunker_for(models).chunk(parsed.document)
    assets = Path(figure_pdf.parent / "assets")
    write_assets(assets, parsed.assets)
    spaces: list[tuple[str, str, int]] = []
    local = embed_prepared(models, prepare_chunks(models, assets, chunks), lambda *s: spaces.append(s))
    assert done.chunks == chunks and done.spaces == tuple(spaces) and {s for s, _, _ in spaces} == {"text", "image"}
    for space, (positions, matrix) in local.items():
        assert done.vectors[space][0] == positions
        np.testing.assert_allclose(done.vectors[space][1], matrix, atol=1e-6)


def test_an_error_passes_through_the_embed_worker(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.7\nnot really")
    try:
        parsed = parse_shipped(_shipped(bad), ParseOptions(assets_dir=str(tmp_path)), Limits())
    finally:
        close_parsers()
    done = EmbedWorker(KBSettings(text_model="fake", image_model="fake")).embed(parsed)
    assert done.document is None and done.error == parsed.error and done.error is not None
    assert str(bad) in str(done.error.exception())


def test_engine_specs() -> None:
    from retrieval.ray_engine import RaySettings

    assert build_engine(None) is None and build_engine("local") is None
    settings = RaySettings.from_uri("ray://10.0.0.5:6379?embedders=4&attempts=2&parser_cpus=0.5")
    assert (settings.address, settings.embedders, settings.attempts, settings.parser_cpus) == ("10.0.0.5:6379", 4,
                                                                                            2, 0.5)
    assert RaySettings.from_uri("ray://h:1?stall_timeout_s=60&task_timeout_s=30").task_timeout_s == 30.0
    for bad, message in (("spark://h:1", "unknown ingest engine"), ("ray://host", "ray://HOST:PORT"),
                         ("ray://h:1?workers=2", "unknown option"), ("ray://h:1?attempts=0", "at least 1")):
        with pytest.raises(ValueError, match=message):
            build_engine(bad)


def test_without_ray_the_engine_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from retrieval import ray_engine

    monkeypatch.setitem(sys.modules, "ray", None)  # as if the package were not installed
    with pytest.raises(MissingDependency, match=r"pip install 'citeline\[ray\]'"):
        ray_engine.import_ray()


def test_ray_is_imported_only_by_the_engine_at_work() -> None:
    code = ("import sys, assistant.sdk, assistant.cli.kb, retrieval.ingest_engine, retrieval.ray_engine, "
            "retrieval.ray_run; build = retrieval.ingest_engine.build_engine('ray://h:1'); "
            "sys.exit(1 if 'ray' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_an_address_where_no_cluster_listens_fails_at_once_saying_what_to_do() -> None:
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'citeline[ray]'")
    import socket

    from retrieval.errors import EngineError
    from retrieval.ray_engine import connect

    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(EngineError, match="no Ray cluster answers at 127.0.0.2:.*ray start --head"):
            connect(f"127.0.0.2:{port}", 5.0)
