"""`--kb postgresql://...` everywhere a KB folder works: the HTTP API (`citeline serve`), `citeline chat`, the
Streamlit app (AppTest), `ingest --watch`, `citeline mcp` and the SDK, against the session's real PostgreSQL +
pgvector server, with the package fakes. The DSNs carry a password (the throwaway cluster trusts loopback, so any
password connects), and no page, log line or event may show it."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.cli import main
from assistant.config import Settings
from assistant.sdk import Citeline
from retrieval.settings import KBSettings
from tests.conftest import ROOT, citeline_serve, make_pdf, serving

PAGES = ["The Borealis kettle boils one litre of water in 95 seconds.\n\nIts filter lifts out for rinsing.",
         "The warranty on the Borealis kettle lasts three years."]
QUESTION = "How fast does the Borealis kettle boil a litre of water?"
CITED = "The Borealis kettle boils one litre of water in 95 seconds [1]."
SECRET = "hunter2-not-shown"
FAKE = ["--text-model", "fake", "--image-model", "fake"]
FAKE_KB = KBSettings(text_model="fake", image_model="fake", tag_images=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CITELINE_HOME: where a server KB's assets (page images) and uploads live on this machine."""
    monkeypatch.setenv("CITELINE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def dsn(pg_dsn: str, home: Path) -> str:
    """A fresh, empty database, named with a password in its DSN."""
    return pg_dsn.replace("://citeline@", f"://citeline:{SECRET}@", 1)


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    return make_pdf(tmp_path / "docs" / "kettle.pdf", PAGES, title="Borealis kettle manual")


@pytest.fixture
def filled(dsn: str, pdf: Path) -> str:
    """The DSN of a KB holding kettle.pdf (ingested by the command line)."""
    assert main(["ingest", str(pdf), "--kb", dsn, *FAKE, "--no-ocr", "--json"]) == 0
    return dsn


def _verified(answer: dict[str, Any], doc: str = "kettle.pdf") -> None:
    assert not answer["abstained"] and answer["citations"], answer
    assert all(c["verified"] and c["doc"] == doc for c in answer["citations"]), answer["citations"]
    assert "95 seconds" in answer["citations"][0]["quote"]


# -- the HTTP API -------------------------------------------------------------------------------------------
@pytest.fixture
def api(dsn: str) -> Iterator[str]:
    """The real app on uvicorn over an empty server KB (created by the first upload)."""
    pytest.importorskip("fastapi")
    from assistant.server.app import create_app

    with Citeline(dsn, settings=Settings(kb_dir=dsn, kb=FAKE_KB, model=f"fake:{CITED}")) as sdk, \
            serving(create_app(sdk, api_key=None)) as base:
        yield base


def test_the_api_ingests_an_upload_into_a_new_server_kb_and_answers_from_it(api: str, pdf: Path, home: Path):
    with httpx.Client(base_url=api, timeout=120) as client:
        r = client.post("/v1/ingest?wait=true", files=[("files", ("kettle.pdf", pdf.read_bytes(), "application/pdf"))])
        assert r.status_code == 200, r.text
        assert r.json()["totals"]["ingested"] == 1, r.json()
        uploaded = Path(r.json()["files"][0]["path"])
        assert uploaded.is_file() and home in uploaded.parents  # a local copy beside the KB's assets, not in cwd

        status = client.get("/v1/status").json()
        assert status["counts"]["documents"] == 1 and SECRET not in json.dumps(status)
        docs = client.get("/v1/documents").json()["documents"]
        assert [d["name"] for d in docs] == ["kettle.pdf"]

        hits = client.post("/v1/search", json={"query": "kettle boils a litre", "top_k": 3}).json()["hits"]
        assert hits and hits[0]["doc"] == "kettle.pdf" and hits[0]["page"] == 1

        answer = client.post("/v1/ask", json={"question": QUESTION}).json()
        _verified(answer)

        models = client.get("/v1/models").json()
        assert models["data"] and SECRET not in json.dumps(models)

        removed = client.delete("/v1/documents", params={"path": "kettle.pdf"})
        assert removed.status_code == 200 and removed.json()["removed"] == [str(uploaded)], removed.text
        assert not uploaded.exists()  # the server's own copy goes with it
        assert client.get("/v1/documents").json()["documents"] == []


def test_the_api_serves_a_cited_pages_image_from_the_server_kb(filled: str, home: Path):
    pytest.importorskip("fastapi")
    from assistant.server.app import create_app

    with Citeline(filled, settings=Settings(kb_dir=filled, kb=FAKE_KB, model="extractive")) as sdk, \
            serving(create_app(sdk, api_key=None)) as base, httpx.Client(base_url=base, timeout=60) as client:
        answer = client.post("/v1/ask", json={"question": QUESTION}).json()
        _verified(answer)
        page = sdk.page_image(sdk.documents()[0].doc_id, answer["citations"][0]["page"])
        assert page is not None and page.thumbnail is not None and home in page.thumbnail.parents
        rel = page.thumbnail.relative_to(sdk.kb.assets_dir).as_posix()
        image = client.get(f"/v1/assets/{rel}")
        assert image.status_code == 200 and image.headers["content-type"].startswith("image/")
        assert image.content == page.thumbnail.read_bytes()


def test_the_api_refuses_an_ingest_at_once_while_another_process_writes_the_server_kb(filled: str, pdf: Path):
    pytest.importorskip("fastapi")
    from assistant.server.app import create_app
    from retrieval.kb import KnowledgeBase

    with Citeline(filled, settings=Settings(kb_dir=filled, kb=FAKE_KB, model="extractive")) as sdk, \
            serving(create_app(sdk, api_key=None)) as base, httpx.Client(base_url=base, timeout=60) as client:
        with KnowledgeBase.open(filled, FAKE_KB, writable=True):  # another writer (the lock names this pid)
            r = client.post("/v1/ingest", files=[("files", ("later.md", b"# Later\n\nLater text.\n", "text/md"))])
            assert r.status_code == 409 and f"being written by pid {os.getpid()}" in r.json()["error"], r.text
            assert SECRET not in r.text
            assert client.get("/v1/jobs").json()["data"] == []  # refused before a job was made
            assert client.delete("/v1/documents", params={"path": "kettle.pdf"}).status_code == 409
            assert client.post("/v1/search", json={"query": "kettle"}).status_code == 200  # readers go on
        r = client.post("/v1/ingest?wait=true",
                        files=[("files", ("later.md", b"# Later\n\nLater text.\n", "text/markdown"))])
        assert r.status_code == 200 and r.json()["totals"]["ingested"] == 1, r.text  # the lock is free again


def test_citeline_serve_over_a_dsn(filled: str, tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "serve.log"
    with citeline_serve(["--kb", filled, "--model", "extractive"], env, log) as base:
        _verified(httpx.post(f"{base}/v1/ask", json={"question": QUESTION}, timeout=120).json())
        hits = httpx.post(f"{base}/v1/search", json={"query": "warranty three years"}, timeout=60).json()["hits"]
        assert hits and hits[0]["doc"] == "kettle.pdf" and hits[0]["page"] == 2
    text = log.read_text()
    assert "citeline: serving postgresql://citeline:***@" in text and SECRET not in text, text


# -- citeline chat ------------------------------------------------------------------------------------------
def test_chat_over_a_dsn_answers_each_scripted_turn_with_citations(filled: str, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]):
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{QUESTION}\n\n/reset\nHow long is the warranty?\n/quit\n"
                                                 "never asked\n"))
    assert main(["chat", "--kb", filled, "--model", "extractive"]) == 0
    out = capsys.readouterr().out
    assert "[1] kettle.pdf p.1" in out and "[1] kettle.pdf p.2" in out, out
    assert "(unverified)" not in out and "closest sources" not in out


# -- the Streamlit app --------------------------------------------------------------------------------------
def _app(kb: str, **config: Any) -> Any:
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from ui.state import UIConfig

    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=120)
    at.session_state["base_config"] = UIConfig(kb_dir=kb, text_model="fake", image_model="fake",
                                               model=f"fake:{CITED}", **config)
    return at.run()


def _page_text(at: Any) -> str:
    return " ".join(e.value for kind in ("markdown", "caption") for e in at.get(kind) if isinstance(e.value, str))


def test_the_ui_uploads_into_a_new_server_kb_lists_it_and_answers_with_a_verified_citation(dsn: str, pdf: Path,
                                                                                           home: Path):
    at = _app(dsn)
    at.sidebar.radio(key="view").set_value("Knowledge base").run()
    assert any("empty" in i.value for i in at.info)
    at.file_uploader[0].set_value([("kettle.pdf", pdf.read_bytes(), "application/pdf")])
    at.run()
    at.button(key="ingest").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Ingested 1" in s.value for s in at.success), [s.value for s in at.success]
    assert (home / "servers").is_dir() and list(home.glob("servers/*/uploads/kettle.pdf"))  # beside its assets
    assert [m.value for m in at.metric][:2] == ["1", "2"]  # documents, pages
    docs = at.dataframe[1].value
    assert list(docs["document"]) == ["kettle.pdf"] and list(docs["pages"]) == [2]
    assert "Server: `postgresql://citeline:***@" in _page_text(at) and SECRET not in _page_text(at)

    at.sidebar.radio(key="view").set_value("Chat").run()
    at.chat_input[0].set_value(QUESTION)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert ":blue-badge[1]" in at.chat_message[1].markdown[0].value  # the marker rendered as a verified chip
    cards = [e.label for e in at.expander if e.label.startswith("[")]
    assert cards and cards[0].startswith("[1] kettle.pdf · page 1") and "verified" in cards[0], cards
    assert at.get("image"), "no highlighted page image from the server KB's assets"

    at.sidebar.radio(key="view").set_value("Knowledge base").run()
    at.multiselect[0].set_value(["kettle.pdf"]).run()
    at.button(key="remove").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [m.value for m in at.metric][:1] == ["0"]
    assert not any("document" in d.value.columns and d.value.shape[0] for d in at.dataframe)


def test_the_ui_served_remotely_never_shows_the_dsns_password(filled: str, monkeypatch: pytest.MonkeyPatch):
    from ui.cli import REMOTE_ENV

    monkeypatch.setenv(REMOTE_ENV, "1")
    at = _app(filled)
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(c.value for c in at.sidebar.caption)
    assert "Knowledge base: `postgresql://citeline:***@" in shown and SECRET not in shown, shown


# -- ingest --watch -----------------------------------------------------------------------------------------
def test_watch_refuses_a_folder_holding_the_server_kbs_assets(dsn: str, tmp_path: Path, home: Path,
                                                            capsys: pytest.CaptureFixture[str]):
    pytest.importorskip("watchfiles")
    assert main(["ingest", str(tmp_path), "--kb", dsn, *FAKE, "--watch"]) == 2
    err = capsys.readouterr().err
    assert "assets folder" in err and "is inside the watched folder" in err and SECRET not in err, err


def test_watch_keeps_a_server_kb_in_sync(dsn: str, tmp_path: Path):
    pytest.importorskip("watchfiles")
    from tests.test_watch import WatchProcess

    folder = (tmp_path / "watched").resolve()
    folder.mkdir()
    watcher = WatchProcess(folder, dsn, "--prune")  # type: ignore[arg-type]  # a DSN where a folder goes
    try:
        started = watcher.next(lambda e: e["event"] == "started", "the started event")
        assert started["kb"].startswith("postgresql://citeline:***@") and SECRET not in json.dumps(started)
        watcher.next(lambda e: e["event"] == "batch" and e["batch"] == 0, "the initial sync")
        pdf = make_pdf(folder / "kettle.pdf", PAGES)
        event = watcher.event("ingested", pdf)
        assert event["pages"] == 2 and event["chunks"] >= 2
        with Citeline(dsn) as sdk:
            assert sdk.search("kettle boils a litre", top_k=1)[0].doc_name == "kettle.pdf"
        pdf.unlink()
        watcher.event("removed", pdf)
        with Citeline(dsn) as sdk:
            assert sdk.documents() == []
    finally:
        assert watcher.stop() == 0


# -- the MCP server -----------------------------------------------------------------------------------------
def test_citeline_mcp_over_a_dsn_serves_every_read_tool_and_resource(dsn: str, tmp_path: Path, home: Path):
    """`citeline mcp --kb postgresql://...` as a real stdio subprocess, driven by the `mcp` SDK's own client: the
    same checks as over a KB folder (search hits, a verified cited answer, a page's text and PNG image from the
    server KB's asset store, the documents resources)."""
    pytest.importorskip("mcp")
    from tests.test_mcp import PAGES as MCP_PAGES
    from tests.test_mcp import check_read_tools, run, stdio

    docs = tmp_path / "mcp-docs"
    docs.mkdir()
    make_pdf(docs / "manual.pdf", MCP_PAGES, title="Aurora X2 manual")
    assert main(["ingest", str(docs), "--kb", dsn, *FAKE, "--no-ocr", "--quiet", "--json"]) == 0
    assert any(p.is_file() for p in home.rglob("*")), "the page images live in the asset store under CITELINE_HOME"
    run(stdio(dsn), check_read_tools)


# -- the SDK ------------------------------------------------------------------------------------------------
def test_the_sdk_over_a_dsn_ingests_answers_removes_and_reports(dsn: str, pdf: Path, home: Path):
    with Citeline(dsn, text_model="fake", image_model="fake") as kb:
        assert kb.kb_dir == dsn and kb.location.startswith("postgresql://citeline:***@")
        assert home in kb.files_dir.parents  # known before the KB exists
        kb.ingest(pdf.parent)
        assert kb.last_report is not None and [f.status for f in kb.last_report.files] == ["ingested"]
        assert kb.files_dir == kb.kb.assets_dir.parent
        status = kb.status()
        assert status["counts"]["documents"] == 1 and status["counts"]["pages"] == 2
        assert SECRET not in json.dumps(status, default=str)
        answer = kb.ask(QUESTION, model="extractive")
        assert not answer.abstained and answer.citations and all(c.verified for c in answer.citations)
        assert answer.citations[0].doc == "kettle.pdf" and answer.citations[0].page == 1
        assert kb.ask(QUESTION, model="extractive").text == answer.text  # same KB, same answer
        assert kb.ingest(pdf).last_report is not None and kb.last_report.files[0].status == "unchanged"
        assert kb.remove(pdf) == [str(pdf)]
        assert kb.documents() == [] and kb.status()["counts"]["documents"] == 0
        assert kb.ask(QUESTION, model="extractive").abstained
