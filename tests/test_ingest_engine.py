"""The pieces of the distributed ingest that need no cluster: shipping a file's bytes to be parsed elsewhere,
embedding a shipped document, the engine spec, and Ray's absence (tests/test_ray.py runs the real cluster)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.errors import CorruptFile, MissingDependency
from ingest.isolation import IsolatedParser, Limits
from ingest.protocols import ParseOptions
from ingest.shipping import ShippedFile, close_parsers, parse_shipped, read_assets, write_assets
from retrieval.embedding import chunker_for, embed_prepared, prepare_chunks
from retrieval.ingest_engine import build_engine
from retrieval.remote_embed import EmbedWorker
from retrieval.settings import KBSettings, ModelSet
from tests.conftest import SHARED_DATA, needs_data

FIGURE_PDF = SHARED_DATA / "pdfs" / "pypdf__pdflatex-image.pdf"


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
