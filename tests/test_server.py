"""The HTTP API over real HTTP: uvicorn on a loopback port, the package fakes, httpx as the client."""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from assistant.config import Settings  # noqa: E402
from assistant.sdk import Citeline  # noqa: E402
from assistant.server.app import ServerLimits, create_app, safe_upload_name  # noqa: E402
from retrieval.lock import WriterLock  # noqa: E402
from retrieval.settings import KBSettings  # noqa: E402
from tests.conftest import ROOT, citeline_serve, make_pdf, serving  # noqa: E402

PAGES = [
    "The Aurora X2 battery lasts 14 hours of continuous playback.\n\nCharging takes 90 minutes with the USB-C adapter.",
    "The warranty covers manufacturing defects for two years.\n\nWater resistance is rated IP67.",
]
REPLY = "The Aurora X2 battery lasts 14 hours of continuous playback [1]."
QUESTION = "How long does the Aurora X2 battery last?"
FAKE_KB = KBSettings(text_model="fake", image_model="fake", tag_images=False)
KEY = "s3cret-key"


def _sdk(kb_dir: Path, model: str = f"fake:{REPLY}") -> Citeline:
    return Citeline(kb_dir, settings=Settings(kb_dir=kb_dir, kb=FAKE_KB, model=model))


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server") / "kb"


@pytest.fixture(scope="module")
def sdk(kb_dir: Path) -> Iterator[Citeline]:
    with _sdk(kb_dir) as sdk:
        yield sdk


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pdf(tmp_path_factory.mktemp("docs") / "manual.pdf", PAGES, title="Aurora X2 manual")


@pytest.fixture(scope="module")
def ingested(base: str, pdf: Path) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=60) as client:
        r = client.post("/v1/ingest?wait=true", files=[("files", ("manual.pdf", pdf.read_bytes(), "application/pdf"))])
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def client(base: str, ingested: dict[str, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as c:
        yield c


def sse_events(response: httpx.Response, max_events: int = 1000) -> list[tuple[str, dict[str, Any]]]:
    """Parse a Server-Sent Events stream into (event, data) pairs."""
    events: list[tuple[str, dict[str, Any]]] = []
    name, data = "message", []
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            events.append((name, json.loads("\n".join(data))))
            name, data = "message", []
            assert len(events) <= max_events, "unbounded event stream"
    return events


def raw_get(base: str, raw_path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET a path exactly as written (httpx would normalise `..` away before sending)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", raw_path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# -- ingest, status, documents -------------------------------------------------------------------------------
def test_upload_ingests_into_the_uploads_folder(ingested: dict[str, Any], kb_dir: Path, client: httpx.Client):
    (result,) = ingested["files"]
    assert result["status"] == "ingested" and result["pages"] == 2
    assert Path(result["path"]) == (kb_dir / "uploads" / "manual.pdf").resolve()
    assert ingested["totals"]["ingested"] == 1

    status = client.get("/v1/status").json()
    assert status["counts"]["documents"] == 1 and status["spaces"]["text"]["vectors"] > 0
    (doc,) = client.get("/v1/documents").json()["documents"]
    assert doc["name"] == "manual.pdf" and doc["pages"] == 2 and doc["paths"] == [result["path"]]


def test_health_and_openapi(base: str):
    assert httpx.get(f"{base}/health", timeout=10).json()["status"] == "ok"
    spec = httpx.get(f"{base}/openapi.json", timeout=10).json()
    assert {"/v1/ask", "/v1/search", "/v1/ingest", "/v1/assets/{path}"} <= set(spec["paths"])
    assert httpx.get(f"{base}/docs", timeout=10).status_code == 200


def test_upload_names_are_sanitised(client: httpx.Client, kb_dir: Path, tmp_path: Path):
    note = b"# Escape notes\n\nThe escape hatch opens with a red lever.\n"
    r = client.post("/v1/ingest?wait=true", files=[("files", ("../../escape-notes.md", note, "text/markdown"))])
    assert r.status_code == 200, r.text
    saved = Path(r.json()["files"][0]["path"])
    assert saved == (kb_dir / "uploads" / "escape-notes.md").resolve() and saved.read_bytes() == note
    assert not (kb_dir.parent / "escape-notes.md").exists()
    assert client.delete("/v1/documents", params={"path": "escape-notes.md"}).json()["removed"] == [str(saved)]


@pytest.mark.parametrize("raw, expected", [
    ("../../etc/passwd.pdf", "passwd.pdf"), ("..\\..\\win.ini.txt", "win.ini.txt"), ("/abs/a b.md", "a b.md"),
    (".hidden.md", "hidden.md"), ("we;rd\x00<name>.pdf", "we_rd__name_.pdf"), ("x" * 300 + ".pdf", "x" * 116 + ".pdf"),
])
def test_safe_upload_name(raw: str, expected: str):
    assert safe_upload_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "..", "../", "/", "....", ".pdf"])
def test_unusable_upload_names_are_refused(client: httpx.Client, raw: str):
    r = client.post("/v1/ingest", files=[("files", (raw, b"data", "application/octet-stream"))])
    assert r.status_code in (400, 415) and r.json()["error"]


def test_upload_type_and_count_checked(client: httpx.Client):
    r = client.post("/v1/ingest", files=[("files", ("tool.exe", b"MZ", "application/octet-stream"))])
    assert r.status_code == 415 and "unsupported file type" in r.json()["error"]
    r = client.post("/v1/ingest", data={"other": "x"})
    assert r.status_code == 400 and "`files`" in r.json()["error"]
    twice = [("files", ("a.md", b"one", "text/markdown")), ("files", ("a.md", b"two", "text/markdown"))]
    assert client.post("/v1/ingest", files=twice).status_code == 400


def test_concurrent_writer_gets_409_with_the_holder(client: httpx.Client, kb_dir: Path):
    with WriterLock(kb_dir):
        r = client.post("/v1/ingest", files=[("files", ("later.md", b"# Later\n\nLater text.\n", "text/markdown"))])
        assert r.status_code == 409
        assert "being written by pid" in r.json()["error"]
        assert client.delete("/v1/documents", params={"path": "later.md"}).status_code == 409
        assert client.post("/v1/search", json={"query": "battery"}).status_code == 200  # readers go on


def test_delete_by_document_id(client: httpx.Client, kb_dir: Path):
    r = client.post("/v1/ingest?wait=true",
                    files=[("files", ("gone.md", b"# Gone\n\nThis note will be deleted.\n", "text/md"))])
    assert r.status_code == 200, r.text
    docs = client.get("/v1/documents").json()["documents"]
    doc_id = next(d["doc_id"] for d in docs if d["name"] == "gone.md")
    r = client.delete(f"/v1/documents/{doc_id}")
    assert r.status_code == 200 and r.json()["removed"][0].endswith("gone.md")
    assert not (kb_dir / "uploads" / "gone.md").exists()
    assert all(d["name"] != "gone.md" for d in client.get("/v1/documents").json()["documents"])
    assert client.delete(f"/v1/documents/{doc_id}").status_code == 404
    assert client.delete("/v1/documents", params={"path": "no/such/file.pdf"}).status_code == 404
    assert client.delete("/v1/documents", params={"path": "/no/such/file.pdf"}).status_code == 400  # absolute


# -- search and ask ------------------------------------------------------------------------------------------
def test_search_returns_hits_json(client: httpx.Client):
    r = client.post("/v1/search", json={"query": "battery playback hours", "top_k": 3, "docs": ["manual.pdf"]})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert 0 < len(hits) <= 3 and hits[0]["doc"] == "manual.pdf" and "14 hours" in hits[0]["text"]
    assert set(hits[0]) >= {"id", "doc_id", "page", "bbox", "kind", "score", "retrievers"}
    assert client.post("/v1/search", json={"query": "battery", "docs": ["other.pdf"]}).json()["hits"] == []


def test_search_by_image(client: httpx.Client):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buf, "PNG")
    r = client.post("/v1/search", json={"image_b64": base64.b64encode(buf.getvalue()).decode(), "top_k": 2})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["hits"], list)
    bad = client.post("/v1/search", json={"image_b64": base64.b64encode(b"not an image").decode()})
    assert bad.status_code == 400 and "not a readable image" in bad.json()["error"]
    assert client.post("/v1/search", json={"image_b64": "%%%"}).status_code == 400


@pytest.mark.parametrize("body", [{}, {"query": "x", "top_k": 0}, {"query": "x", "top_k": 10_000},
                                  {"query": "x", "unknown": 1}, {"query": ""}])
def test_search_bad_input_is_400(client: httpx.Client, body: dict[str, Any]):
    r = client.post("/v1/search", json=body)
    assert r.status_code == 400 and r.json()["error"], r.text


def test_malformed_json_is_400(client: httpx.Client):
    r = client.post("/v1/search", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("invalid request")


def test_ask_json(client: httpx.Client):
    r = client.post("/v1/ask", json={"question": QUESTION, "top_k": 4, "sampling": {"temperature": 0, "seed": 1}})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert not answer["abstained"] and "14 hours" in answer["answer"]
    (citation,) = answer["citations"]
    assert citation["doc"] == "manual.pdf" and citation["page"] == 1 and citation["verified"]
    assert citation["verdict"] == "supported" and citation["reason"].startswith("supported")
    assert [c["verdict"] for c in answer["claims"]] == ["supported"] and answer["claims"][0]["shown"]
    assert answer["sources"] and answer["model"] == "fake"


def test_ask_streams_server_sent_events(client: httpx.Client):
    with client.stream("POST", "/v1/ask", json={"question": QUESTION, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    kinds = [name for name, _ in events]
    assert kinds[0] == "sources" and kinds[-1] == "answer" and kinds.count("answer") == 1
    tokens = [data["text"] for name, data in events if name == "token"]
    assert "".join(tokens) == REPLY
    answer = events[-1][1]["answer"]
    assert answer["citations"][0]["verified"] and events[0][1]["sources"][0]["doc"] == "manual.pdf"


def test_ask_with_another_named_model_and_a_session(client: httpx.Client):
    first = client.post("/v1/ask", json={"question": QUESTION, "model": "extractive", "session_id": "s-1"})
    assert first.status_code == 200, first.text
    assert first.json()["model"] == "extractive" and not first.json()["abstained"]
    second = client.post("/v1/ask", json={"question": "And how long does charging take?", "session_id": "s-1"})
    assert second.status_code == 200 and second.json()["question"] == "And how long does charging take?"
    assert "Aurora" in second.json()["query"]  # the follow-up was rewritten with the session's history
    other = client.post("/v1/ask", json={"question": "And how long does charging take?", "session_id": "s-2"})
    assert "Aurora" not in other.json()["query"]


def _png_b64() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.mark.parametrize("stream", [False, True])
def test_ask_with_a_query_image_shows_it_to_a_vision_model(client: httpx.Client, sdk: Citeline, stream: bool):
    from assistant.generators.fake import ScriptedGenerator

    vision = sdk._generators["fake-vision"] = ScriptedGenerator(REPLY, supports_images=True, name="fake-vision")
    body = {"question": QUESTION, "model": "fake-vision", "image_b64": _png_b64(), "stream": stream}
    if stream:
        with client.stream("POST", "/v1/ask", json=body) as r:
            assert r.status_code == 200
            answer = sse_events(r)[-1][1]["answer"]
    else:
        r = client.post("/v1/ask", json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
    assert answer["model"] == "fake-vision" and not answer["abstained"]
    (call,) = vision.calls
    shown = Path(call.images[0])
    assert shown.name.startswith("citeline-query-") and shown.suffix == ".png"  # the user's picture comes first
    assert not shown.exists()  # the temporary copy is gone once the answer is out


def test_ask_with_a_bad_query_image_is_400(client: httpx.Client):
    bad = client.post("/v1/ask", json={"question": QUESTION, "image_b64": base64.b64encode(b"no image").decode()})
    assert bad.status_code == 400 and "not a readable image" in bad.json()["error"]
    assert client.post("/v1/ask", json={"question": QUESTION, "image_b64": "%%%"}).status_code == 400


@pytest.mark.parametrize("model", ["gguf:/etc/passwd", "openai:gpt@http://10.0.0.1/v1", "no-such-model"])
def test_ask_refuses_paths_urls_and_unknown_models(client: httpx.Client, model: str):
    r = client.post("/v1/ask", json={"question": QUESTION, "model": model})
    assert r.status_code == 400 and model in r.json()["error"]


def test_ask_bad_input_is_400(client: httpx.Client):
    assert client.post("/v1/ask", json={"question": ""}).status_code == 400
    assert client.post("/v1/ask", json={"question": "q", "sampling": {"top_p": 2}}).status_code == 400
    assert client.post("/v1/ask", json={"question": "q", "session_id": "../x"}).status_code == 400


def test_unexpected_errors_are_500_without_a_traceback(client: httpx.Client, sdk: Citeline,
                                                       monkeypatch: pytest.MonkeyPatch):
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals at /srv/private")

    monkeypatch.setattr(sdk, "search", boom)
    r = client.post("/v1/search", json={"query": "battery"})
    assert r.status_code == 500
    assert r.json()["error"].startswith("internal server error (RuntimeError)")
    assert "Traceback" not in r.text and "secret" not in r.text


# -- assets --------------------------------------------------------------------------------------------------
def test_assets_served(client: httpx.Client, kb_dir: Path):
    (doc,) = [d for d in client.get("/v1/documents").json()["documents"] if d["name"] == "manual.pdf"]
    thumb = f"{doc['doc_id']}/p0001.jpg"
    assert (kb_dir / "assets" / thumb).is_file()
    r = client.get(f"/v1/assets/{thumb}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == (kb_dir / "assets" / thumb).read_bytes()
    assert client.get(f"/v1/assets/{doc['doc_id']}/p0099.jpg").status_code == 404


@pytest.mark.parametrize("raw_path", [
    "/v1/assets/../../etc/passwd", "/v1/assets/../catalog.sqlite", "/v1/assets/%2e%2e/%2e%2e/etc/passwd",
    "/v1/assets/..%2f..%2fetc%2fpasswd", "/v1/assets/%2e%2e%2fcatalog.sqlite", "/v1/assets//etc/passwd",
    "/v1/assets/%2fetc%2fpasswd", "/v1/assets/..%5c..%5cetc%5cpasswd", "/v1/assets/%252e%252e%252fetc%252fpasswd",
    "/v1/assets/x/%00.png", "/v1/assets/C:%5cWindows%5cwin.ini", "/v1/assets/../manifest.json",
])
def test_asset_traversal_refused(client: httpx.Client, base: str, raw_path: str):
    status, body = raw_get(base, raw_path)
    assert status in (400, 404), (raw_path, status)
    assert b"root:" not in body and b"SQLite" not in body and b"spaces" not in body


def test_asset_symlink_out_of_the_folder_refused(client: httpx.Client, kb_dir: Path, tmp_path: Path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"\x89PNG secret")
    link = kb_dir / "assets" / "link.png"
    link.symlink_to(outside)
    try:
        assert client.get("/v1/assets/link.png").status_code == 404
    finally:
        link.unlink()


# -- auth and limits -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def locked_base(kb_dir: Path, ingested: dict[str, Any]) -> Iterator[str]:
    """A second server over the same KB, with an API key and small upload limits."""
    limits = ServerLimits(max_file_bytes=2000, max_request_bytes=20_000, max_files=2, max_image_bytes=1000)
    with _sdk(kb_dir) as sdk, serving(create_app(sdk, api_key=KEY, limits=limits)) as url:
        yield url


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"},
                                     {"Authorization": KEY}, {"Authorization": "Bearer"}])
def test_key_required_when_configured(locked_base: str, headers: dict[str, str]):
    with httpx.Client(base_url=locked_base, timeout=10, headers=headers) as c:
        for method, path in [("GET", "/v1/status"), ("GET", "/v1/documents"), ("POST", "/v1/search"),
                             ("POST", "/v1/ask"), ("POST", "/v1/ingest"), ("DELETE", "/v1/documents/x"),
                             ("GET", "/v1/assets/x.png")]:
            r = c.request(method, path)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer" and "API key" in r.json()["error"]
        assert c.get("/health").status_code == 200


def test_keyed_server_keeps_its_schema_for_key_holders(locked_base: str):
    """Decided: with a key, nothing but /health answers without it. The schema is served to key holders; the
    interactive pages are off, since they fetch the schema without a key and could not work."""
    assert httpx.get(f"{locked_base}/openapi.json", timeout=10).status_code == 401
    assert httpx.get(f"{locked_base}/openapi.json", headers={"Authorization": "Bearer wrong"}, timeout=10
                     ).status_code == 401
    spec = httpx.get(f"{locked_base}/openapi.json", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert spec.status_code == 200 and "/v1/ask" in spec.json()["paths"]
    assert "/openapi.json" not in spec.json()["paths"]
    for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        r = httpx.get(f"{locked_base}{page}", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
        assert r.status_code == 404 and "swagger" not in r.text.lower() and "redoc" not in r.text.lower(), page


def test_key_accepted(locked_base: str):
    with httpx.Client(base_url=locked_base, timeout=30, headers={"Authorization": f"Bearer {KEY}"}) as c:
        assert c.get("/v1/status").status_code == 200
        assert c.post("/v1/search", json={"query": "warranty"}).json()["hits"]


def test_size_limits_are_413(locked_base: str):
    with httpx.Client(base_url=locked_base, timeout=30, headers={"Authorization": f"Bearer {KEY}"}) as c:
        r = c.post("/v1/ingest", files=[("files", ("big.md", b"x" * 5000, "text/markdown"))])
        assert r.status_code == 413 and "big.md" in r.json()["error"]
        r = c.post("/v1/ingest", files=[("files", (f"f{i}.md", b"x" * 1000, "text/markdown")) for i in range(25)])
        assert r.status_code == 413 and "request body" in r.json()["error"]
        three = [("files", (f"f{i}.md", b"x", "text/markdown")) for i in range(3)]
        assert c.post("/v1/ingest", files=three).status_code == 400
        r = c.post("/v1/search", json={"image_b64": base64.b64encode(b"x" * 3000).decode()})
        assert r.status_code == 413


def test_chunked_body_over_the_limit_is_413(locked_base: str):
    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b" " * 1000

    with httpx.Client(base_url=locked_base, timeout=30, headers={"Authorization": f"Bearer {KEY}"}) as c:
        r = c.post("/v1/search", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413


# -- the command line ----------------------------------------------------------------------------------------
def test_cli_serve_subprocess_with_key(kb_dir: Path, ingested: dict[str, Any], tmp_path: Path):
    env = {**os.environ, "CITELINE_SERVER_KEY": KEY, "PYTHONPATH": str(ROOT)}
    with citeline_serve(["--kb", str(kb_dir), "--model", "extractive"], env, tmp_path / "serve.log") as base:
        assert httpx.get(f"{base}/v1/status", timeout=10).status_code == 401
        r = httpx.post(f"{base}/v1/ask", json={"question": QUESTION}, timeout=60,
                       headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200 and r.json()["model"] == "extractive", r.text


def test_cli_refuses_public_interface_without_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]):
    from assistant.cli import main

    monkeypatch.delenv("CITELINE_SERVER_KEY", raising=False)
    assert main(["serve", "--kb", str(tmp_path / "kb"), "--host", "0.0.0.0"]) == 2
    assert "CITELINE_SERVER_KEY" in capsys.readouterr().err


@dataclass
class EndlessGenerator:
    """Generates until it is closed: a stream nobody cancels never ends."""

    name: str = "endless"
    supports_images: bool = False
    cites_reliably: bool = True
    pieces: int = 0
    closed: threading.Event = field(default_factory=threading.Event)

    def stream(self, messages: Any, images: Any = (), sampling: Any = None) -> Iterator[str]:
        try:
            while True:
                self.pieces += 1
                time.sleep(0.01)
                yield "word "
        finally:
            self.closed.set()


def test_client_leaving_a_stream_cancels_it_and_frees_the_server(client: httpx.Client, sdk: Citeline,
                                                                 monkeypatch: pytest.MonkeyPatch):
    endless = EndlessGenerator()
    monkeypatch.setattr(sdk, "generator", lambda model=None: endless)
    with client.stream("POST", "/v1/ask", json={"question": QUESTION, "stream": True}) as r:
        lines = r.iter_lines()
        assert next(lines) == "event: sources"
        for line in lines:
            if line == "event: token":
                break  # the model is generating: hang up
    # an endless answer holds the read lock until it is cancelled: this search is answered only if it was
    assert client.post("/v1/search", json={"query": "battery"}, timeout=30).status_code == 200
    assert endless.closed.is_set() and endless.pieces > 0, "the abandoned stream was never closed"
