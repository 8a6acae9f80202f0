"""Untrusted input at the HTTP edges, end to end over real loopback HTTP.

1. `DELETE /v1/documents` with traversal, encoded, absolute and symlinked paths: a clear 4xx, and nothing outside
   the uploads folder is unlinked (sentinel files outside survive, byte for byte), nor forgotten by the KB.
2. A model endpoint that fails in every way we know (401, 429 with Retry-After, 500, an error event mid-stream,
   a stream cut off, one that stops without [DONE], a read timeout) is scripted by a tiny real HTTP server in
   this file; each failure is a clear error from the generator, a one-line message and exit code 2 from
   `citeline ask` (no traceback), and a 502/503/504 with a message from `citeline`'s own server (JSON and SSE).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from assistant.config import Settings  # noqa: E402
from assistant.errors import EndpointBusy, EndpointError, EndpointTimeout  # noqa: E402
from assistant.generators import build_generator  # noqa: E402
from assistant.prompting import build_messages  # noqa: E402
from assistant.sdk import Citeline  # noqa: E402
from assistant.server.app import create_app  # noqa: E402
from assistant.types import Source  # noqa: E402
from retrieval.settings import KBSettings  # noqa: E402
from tests.conftest import ROOT, SHARED_DATA, serving  # noqa: E402

FAKE_KB = KBSettings(text_model="fake", image_model="fake", tag_images=False)
REAL_PDF = SHARED_DATA / "pdfs" / "pypdf__google-doc-document.pdf"  # uploaded
OUTSIDE_PDF = SHARED_DATA / "pdfs" / "pypdf__crazyones-pdfa.pdf"  # ingested from outside the uploads folder
NOTE = b"# Aurora notes\n\nThe Aurora X2 battery lasts 14 hours of continuous playback.\n"
KEEP = b"# Kept notes\n\nThe warranty covers manufacturing defects for two years.\n"


# -- 1. deleting by path ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """<root>/kb (its uploads folder holds symlinks out), <root>/outside (ingested from there: the KB knows it)."""
    if not (REAL_PDF.is_file() and OUTSIDE_PDF.is_file()):
        pytest.skip(f"public test data not found at {SHARED_DATA} (see README: Development)")
    root = tmp_path_factory.mktemp("security")
    outside = root / "outside"
    outside.mkdir()
    (outside / "sentinel.pdf").write_bytes(OUTSIDE_PDF.read_bytes())
    (outside / "notes.md").write_bytes(NOTE)
    kb = root / "kb"
    uploads = kb / "uploads"
    uploads.mkdir(parents=True)
    (uploads / "link-dir").symlink_to(outside, target_is_directory=True)
    (uploads / "link.pdf").symlink_to(outside / "sentinel.pdf")
    (kb / "secret.md").write_bytes(b"# kb-level file, not an upload\n")
    return {"root": root, "kb": kb, "uploads": uploads, "outside": outside}


@pytest.fixture(scope="module")
def delete_base(tree: dict[str, Path]) -> Iterator[str]:
    with Citeline(tree["kb"], settings=Settings(kb_dir=tree["kb"], kb=FAKE_KB, model="extractive")) as sdk:
        sdk.ingest(tree["outside"])  # from elsewhere, as `citeline ingest` would: the user's files
        with serving(create_app(sdk, api_key=None)) as url:
            with httpx.Client(base_url=url, timeout=60) as c:
                r = c.post("/v1/ingest?wait=true",
                           files=[("files", ("manual.pdf", REAL_PDF.read_bytes(), "application/pdf")),
                                  ("files", ("keep.md", KEEP, "text/markdown"))])
                assert r.status_code == 200 and r.json()["totals"]["ingested"] == 2, r.text
            yield url


def _snapshot(tree: dict[str, Path]) -> dict[str, bytes]:
    files = [*tree["outside"].iterdir(), tree["kb"] / "secret.md", tree["kb"] / "manifest.json",
             tree["kb"] / "catalog.sqlite"]
    return {str(p): p.read_bytes() for p in files if p.is_file()}


def _documents(base: str) -> set[str]:
    return {p for d in httpx.get(f"{base}/v1/documents", timeout=30).json()["documents"] for p in d["paths"]}


def _raw(base: str, method: str, target: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Send the request line exactly as written (httpx would normalise `..` and re-encode)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, target, headers=headers or {})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def _hostile_paths(tree: dict[str, Path]) -> list[str]:
    """Query strings for DELETE /v1/documents?path=..., some percent-encoded by hand."""
    outside = str(tree["outside"])
    plain = ["../../outside/sentinel.pdf", "../../outside", "..", "../", "../secret.md", "link-dir",
             "link-dir/sentinel.pdf", "link.pdf", "./../../outside", "sub/../../../outside", "..\\..\\outside",
             outside, outside + "/sentinel.pdf", "/etc/passwd", "/", "", " ", "C:\\Windows", "a\x00b"]
    encoded = ["..%2F..%2Foutside", "%2e%2e/%2e%2e/outside/sentinel.pdf", "%2E%2E%2F%2E%2E%2Foutside",
               "%252e%252e%252f%252e%252e%252foutside", "..%5c..%5coutside", "%2Fetc%2Fpasswd", "link-dir%2F",
               "%00", "..%00/outside"]
    return [quote(p, safe="") for p in plain] + encoded


def test_delete_with_hostile_paths_unlinks_and_forgets_nothing(delete_base: str, tree: dict[str, Path]):
    before, known = _snapshot(tree), _documents(delete_base)
    assert str((tree["outside"] / "sentinel.pdf").resolve()) in known  # the KB knows the outside files
    for query in _hostile_paths(tree):
        status, body = _raw(delete_base, "DELETE", f"/v1/documents?path={query}")
        assert status in (400, 404), (query, status, body)
        assert body["error"] and body["status"] == status, (query, body)
        if status == 400:
            assert "uploads folder" in body["error"], (query, body)
    assert _snapshot(tree) == before, "a file outside the uploads folder changed"
    assert _documents(delete_base) == known, "a hostile DELETE made the KB forget a document"
    assert (tree["uploads"] / "link.pdf").is_symlink() and (tree["uploads"] / "link-dir").is_symlink()


@pytest.mark.parametrize("doc_id", ["..%2F..%2Foutside", "%2e%2e", "..", "x%00"])
def test_delete_by_a_hostile_document_id_is_404(delete_base: str, tree: dict[str, Path], doc_id: str):
    before = _snapshot(tree)
    status, body = _raw(delete_base, "DELETE", f"/v1/documents/{doc_id}")
    assert status in (404, 405) and _snapshot(tree) == before, (status, body)


def test_removing_an_outside_document_by_id_forgets_it_but_keeps_the_file(delete_base: str, tree: dict[str, Path]):
    notes = (tree["outside"] / "notes.md").resolve()
    docs = httpx.get(f"{delete_base}/v1/documents", timeout=30).json()["documents"]
    doc_id = next(d["doc_id"] for d in docs if str(notes) in d["paths"])
    r = httpx.delete(f"{delete_base}/v1/documents/{doc_id}", timeout=30)
    assert r.status_code == 200 and r.json()["removed"] == [str(notes)]
    assert notes.read_bytes() == NOTE  # forgotten by the KB, still on disk: it is the user's file
    assert str(notes) not in _documents(delete_base)


def test_an_upload_replaced_by_a_symlink_is_refused_and_its_target_kept(delete_base: str, tree: dict[str, Path]):
    """A catalogued upload that became a link out of the folder: the path route refuses it (it leads out), the
    id route refuses too (removal would follow the link and could forget another file), the target stays."""
    keep = tree["uploads"] / "keep.md"
    docs = httpx.get(f"{delete_base}/v1/documents", timeout=30).json()["documents"]
    doc_id = next(d["doc_id"] for d in docs if str(keep.resolve()) in d["paths"])
    target = tree["outside"] / "target.md"
    target.write_bytes(b"# outside target\n")
    keep.unlink()
    keep.symlink_to(target)
    assert httpx.delete(f"{delete_base}/v1/documents", params={"path": "keep.md"}, timeout=30).status_code == 400
    r = httpx.delete(f"{delete_base}/v1/documents/{doc_id}", timeout=30)
    assert r.status_code == 409 and "replaced by a link" in r.json()["error"], r.text
    assert keep.is_symlink() and target.read_bytes() == b"# outside target\n"
    assert str(keep) in _documents(delete_base)  # nothing was forgotten
    keep.unlink()  # as the message says: the link goes, then the document
    r = httpx.delete(f"{delete_base}/v1/documents/{doc_id}", timeout=30)
    assert r.status_code == 200 and r.json()["removed"] == [str(keep)], r.text
    assert target.read_bytes() == b"# outside target\n"


def test_an_upload_never_writes_through_a_planted_part_file_link(delete_base: str, tree: dict[str, Path]):
    """Uploads are written to a part file, then renamed: a link planted where that part file went (the old
    fixed name) must not make the server write outside the uploads folder."""
    target = tree["outside"] / "planted-target.md"
    target.write_bytes(b"# must stay\n")
    (tree["uploads"] / ".planted.md.part").symlink_to(target)
    body = b"# Planted\n\nThe charger is rated at 65 watts.\n"
    r = httpx.post(f"{delete_base}/v1/ingest?wait=true", files=[("files", ("planted.md", body, "text/markdown"))],
                   timeout=60)
    assert r.status_code == 200 and r.json()["files"][0]["status"] == "ingested", r.text
    assert target.read_bytes() == b"# must stay\n" and (tree["uploads"] / "planted.md").read_bytes() == body
    assert not [p for p in tree["uploads"].iterdir() if p.name.endswith(".part") and not p.is_symlink()]


def test_ui_uploads_never_write_through_a_planted_part_file_link(tmp_path: Path):
    from dataclasses import dataclass

    from ui.uploads import save_uploads

    @dataclass
    class Upload:  # the two fields of Streamlit's UploadedFile that save_uploads reads
        name: str
        data: bytes

        def getvalue(self) -> bytes:
            return self.data

    root, target = tmp_path / "uploads", tmp_path / "outside.md"
    root.mkdir()
    target.write_bytes(b"# must stay\n")
    (root / ".notes.md.part").symlink_to(target)
    saved = save_uploads([Upload("notes.md", b"# Notes\n\nTwo years of warranty.\n")], root)
    assert saved.saved == [root / "notes.md"] and not saved.rejected
    assert target.read_bytes() == b"# must stay\n" and (root / "notes.md").read_bytes().startswith(b"# Notes")


def test_an_uploaded_file_is_deleted_by_its_relative_path(delete_base: str, tree: dict[str, Path]):
    """The control: the route does unlink what the server itself saved (so the checks above can fail)."""
    manual = tree["uploads"] / "manual.pdf"
    assert manual.is_file()
    r = httpx.delete(f"{delete_base}/v1/documents", params={"path": "manual.pdf"}, timeout=30)
    assert r.status_code == 200 and r.json()["removed"] == [str(manual.resolve())]
    assert not manual.exists() and (tree["outside"] / "sentinel.pdf").read_bytes() == OUTSIDE_PDF.read_bytes()


# -- 2. a scripted OpenAI-compatible endpoint --------------------------------------------------------------------
def _chunk(text: str, finish: str | None = None) -> bytes:
    event = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}
    return f"data: {json.dumps(event)}\n\n".encode()


class Scripted(BaseHTTPRequestHandler):
    """Replies by the `mode=NAME` written in the request (the question carries it)."""

    protocol_version = "HTTP/1.1"
    release = threading.Event()  # frees the "slow" replies at teardown

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        mode = (re.search(r"mode=([a-z-]+)", body) or re.search("()", "")).group(1) or "ok"
        getattr(self, "reply_" + mode.replace("-", "_"))()

    def _send(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, **headers: str) -> None:
        self._send(status, json.dumps({"error": {"message": message, "type": "scripted"}}).encode(), **headers)

    def _stream_head(self, length: int | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def reply_ok(self) -> None:
        body = _chunk("The battery lasts 14 hours ") + _chunk("[1].", "stop") + b"data: [DONE]\n\n"
        self._send(200, body, "text/event-stream")

    def reply_unauthorized(self) -> None:
        self._error(401, "Incorrect API key provided", WWW_Authenticate="Bearer")

    def reply_busy(self) -> None:
        self._error(429, "Rate limit reached for requests", Retry_After="7")

    def reply_broken(self) -> None:
        self._error(500, "CUDA out of memory")

    def reply_error_event(self) -> None:
        self._stream_head()
        self.wfile.write(_chunk("The battery ") + b'data: {"error": {"message": "model worker crashed"}}\n\n')

    def reply_cut(self) -> None:  # declares more than it sends, then hangs up
        self._stream_head(length=10_000)
        self.wfile.write(_chunk("The battery lasts "))

    def reply_no_done(self) -> None:  # a clean end of the body, but the reply never finished
        self._stream_head()
        self.wfile.write(_chunk("The battery lasts "))

    def reply_slow(self) -> None:
        self._stream_head()
        self.wfile.write(_chunk("The "))
        self.wfile.flush()
        self.release.wait(30)


# mode → (exception class, words its message must hold, our server's HTTP status)
FAILURES: dict[str, tuple[type[EndpointError], str, int]] = {
    "unauthorized": (EndpointError, "refused the API key", 502),
    "busy": (EndpointBusy, "retry after 7 s", 503),
    "broken": (EndpointError, "HTTP 500: CUDA out of memory", 502),
    "error-event": (EndpointError, "model worker crashed", 502),
    "cut": (EndpointError, "closed the connection before the reply was complete", 502),
    "no-done": (EndpointError, "before the reply was complete", 502),
    "slow": (EndpointTimeout, "did not answer within 1 s", 504),
}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        Scripted.release.set()
        server.shutdown()
        server.server_close()


def _messages(mode: str) -> list[Any]:
    source = Source(1, "manual.pdf", "d", 1, "text", "The Aurora X2 battery lasts 14 hours.")
    return build_messages(f"How long does the battery last? mode={mode}", [source])


def test_the_scripted_endpoint_answers_when_asked_to(endpoint: str):
    gen = build_generator(f"openai:scripted@{endpoint}", env={"CITELINE_API_TIMEOUT": "1"})
    assert "".join(gen.stream(_messages("ok"))) == "The battery lasts 14 hours [1]."


@pytest.mark.parametrize("mode", list(FAILURES))
def test_generator_turns_each_failure_into_a_clear_error(endpoint: str, mode: str):
    kind, words, _ = FAILURES[mode]
    gen = build_generator(f"openai:scripted@{endpoint}", env={"CITELINE_API_TIMEOUT": "1", "CITELINE_API_KEY": "k"})
    with pytest.raises(kind) as caught:
        list(gen.stream(_messages(mode)))
    assert words in str(caught.value) and endpoint in str(caught.value)
    if mode == "busy":
        assert caught.value.headers == {"Retry-After": "7"}


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf"])
def test_a_bad_timeout_setting_is_a_clear_error(value: str):
    with pytest.raises(EndpointError, match="invalid endpoint timeout"):
        build_generator("openai:m@http://127.0.0.1:9/v1", env={"CITELINE_API_TIMEOUT": value})


@pytest.fixture(scope="module")
def answer_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("endpoint")
    (root / "docs").mkdir()
    (root / "docs" / "notes.md").write_bytes(NOTE)
    with Citeline(root / "kb", settings=Settings(kb_dir=root / "kb", kb=FAKE_KB, model="extractive")) as sdk:
        sdk.ingest(root / "docs")
    return root / "kb"


def _ask_cli(kb: Path, endpoint: str, mode: str, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CITELINE_API_TIMEOUT": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "assistant.cli", "ask", f"How long does the Aurora battery last? mode={mode}",
               "--kb", str(kb), "--model", f"openai:scripted@{endpoint}", *extra]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_cli_ask_through_the_scripted_endpoint(answer_kb: Path, endpoint: str):
    done = _ask_cli(answer_kb, endpoint, "ok", "--json")
    assert done.returncode == 0, done.stderr
    assert "14 hours" in json.loads(done.stdout)["answer"]


@pytest.mark.parametrize("mode", ["unauthorized", "busy", "broken", "error-event", "cut", "slow"])
def test_cli_reports_endpoint_failures_in_one_line(answer_kb: Path, endpoint: str, mode: str):
    _, words, _ = FAILURES[mode]
    done = _ask_cli(answer_kb, endpoint, mode)
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("citeline: error:")]
    assert words in line, done.stderr


@pytest.fixture(scope="module")
def relay(answer_kb: Path, endpoint: str) -> Iterator[str]:
    """Our own server, configured with the scripted endpoint as its model."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CITELINE_API_TIMEOUT", "1")
        spec = f"openai:scripted@{endpoint}"
        with Citeline(answer_kb, settings=Settings(kb_dir=answer_kb, kb=FAKE_KB, model=spec)) as sdk, \
                serving(create_app(sdk, api_key=None)) as url:
            yield url


@pytest.mark.parametrize("mode", list(FAILURES))
def test_our_server_answers_endpoint_failures_with_a_gateway_status(relay: str, mode: str):
    _, words, status = FAILURES[mode]
    r = httpx.post(f"{relay}/v1/ask", json={"question": f"How long does the Aurora battery last? mode={mode}"},
                   timeout=60)
    assert r.status_code == status, (r.status_code, r.text)
    assert r.json()["error"].startswith("the model endpoint failed: ") and words in r.json()["error"]
    assert "Traceback" not in r.text
    if mode == "busy":
        assert r.headers["retry-after"] == "7"


@pytest.mark.parametrize("mode", ["busy", "error-event", "slow"])
def test_a_streamed_answer_ends_with_an_error_event(relay: str, mode: str):
    from tests.test_server import sse_events

    _, words, status = FAILURES[mode]
    body = {"question": f"How long does the Aurora battery last? mode={mode}", "stream": True}
    with httpx.stream("POST", f"{relay}/v1/ask", json=body, timeout=60) as r:
        assert r.status_code == 200  # the status line went out with the sources
        events = sse_events(r)
    assert events[0][0] == "sources" and events[-1][0] == "error"
    assert events[-1][1]["status"] == status and words in events[-1][1]["error"]
    assert "answer" not in [name for name, _ in events]


def test_the_relay_still_answers_after_the_failures(relay: str):
    r = httpx.post(f"{relay}/v1/ask", json={"question": "How long does the Aurora battery last? mode=ok"}, timeout=60)
    assert r.status_code == 200 and "14 hours" in r.json()["answer"], r.text


def test_a_real_citeline_serve_with_a_key(answer_kb: Path, endpoint: str, tmp_path: Path):
    """The same guarantees through `citeline serve` itself (a subprocess): keyed schema and no /docs, path
    checks on DELETE, and the endpoint's rate limit as 503 with its Retry-After."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CITELINE_SERVER_KEY": "k3y", "CITELINE_API_TIMEOUT": "1", "PYTHONPATH": str(ROOT)}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--kb", str(answer_kb), "--port",
                                 str(port), "--model", f"openai:scripted@{endpoint}"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": "Bearer k3y"}
    try:
        for _ in range(300):
            assert proc.poll() is None, log.read_text(errors="replace")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert httpx.get(f"{base}/openapi.json", timeout=10).status_code == 401
        assert httpx.get(f"{base}/openapi.json", headers=auth, timeout=10).status_code == 200
        assert httpx.get(f"{base}/docs", headers=auth, timeout=10).status_code == 404
        status, body = _raw(base, "DELETE", f"/v1/documents?path={quote(str(answer_kb), safe='')}", auth)
        assert status == 400 and "uploads folder" in body["error"]
        r = httpx.post(f"{base}/v1/ask", json={"question": "How long does the Aurora battery last? mode=busy"},
                       headers=auth, timeout=60)
        assert r.status_code == 503 and r.headers["retry-after"] == "7" and "retry after 7 s" in r.json()["error"]
        assert (answer_kb / "catalog.sqlite").is_file()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in log.read_text(errors="replace")



def test_cli_chat_goes_on_after_an_endpoint_failure(answer_kb: Path, endpoint: str):
    """One failed turn is one error line; the next question in the same session is answered."""
    env = {**os.environ, "CITELINE_API_TIMEOUT": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "assistant.cli", "chat", "--kb", str(answer_kb), "--model",
               f"openai:scripted@{endpoint}"]
    questions = "How long does the Aurora battery last? mode=broken\nHow long does the Aurora battery last? mode=ok\n"
    done = subprocess.run(command, cwd=ROOT, env=env, input=questions, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("citeline: error:")]
    assert FAILURES["broken"][1] in line
    assert "14 hours" in done.stdout
