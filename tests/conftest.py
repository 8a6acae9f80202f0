from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the public test data (README.md, "Test data"); CITELINE_TEST_DATA points elsewhere
SHARED_DATA = Path(os.environ.get("CITELINE_TEST_DATA") or ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach the network: only loopback connections are allowed."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")) \
                and self.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"network access in tests is not allowed: {address}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run `app` on uvicorn in a thread on a free loopback port; always shut it down."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(200):  # at most ~10 s
            if server.started or not thread.is_alive():
                break
            time.sleep(0.05)
        assert server.started, "the server did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), "the server did not stop"


@contextmanager
def citeline_serve(args: list[str], env: dict[str, str], log: Path) -> Iterator[str]:
    """`citeline serve ARGS` as a subprocess on a free loopback port (output to `log`), once /health answers
    (at most ~30 s); always stopped."""
    import httpx

    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", *args, "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(150):  # at most ~30 s
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    assert proc.poll() is None, log.read_text()
                    time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def served_key() -> str | None:
    """The API key the module's `base` server requires (None: none); a test module overrides this fixture."""
    return None


@pytest.fixture(scope="module")
def base(sdk: Any, served_key: str | None) -> Iterator[str]:
    """The test module's `sdk` fixture served over HTTP (`assistant.server.app`) on a free loopback port."""
    from assistant.server.app import create_app

    with serving(create_app(sdk, api_key=served_key)) as url:
        yield url


DATA_SKIP = "public test data missing"


def data_reason(sub: str = "") -> str:
    """The one skip reason for tests that read ../shared/data: says what is missing and where to get it."""
    where = SHARED_DATA / sub if sub else SHARED_DATA
    return f"{DATA_SKIP}: {where} not found (README.md, 'Test data', says where it comes from)"


def needs_data(sub: str = "") -> pytest.MarkDecorator:
    """Skip marker for a test that reads ../shared/data/<sub>."""
    return pytest.mark.skipif(not (SHARED_DATA / sub).exists(), reason=data_reason(sub))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(data_reason())
    return SHARED_DATA


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A newcomer without the public data is told which tests did not run, and how to get it."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if DATA_SKIP in str(getattr(r, "longrepr", ""))]
    if not skipped:
        return
    terminalreporter.section("tests skipped for missing public data")
    for report in skipped:
        terminalreporter.line(f"  {report.nodeid}")
    terminalreporter.line(f"{len(skipped)} tests need {SHARED_DATA}: see README.md, 'Test data', for the sources "
                          "(BEIR SciFact, MS-COCO, MMLongBench-Doc, the public PDF set) and where to put them.")


def make_pdf(path: Path, pages: list[str], title: str = "") -> Path:
    """A small real PDF with one heading and paragraphs per page (PyMuPDF)."""
    import pymupdf

    doc = pymupdf.open()
    for i, text in enumerate(pages, 1):
        page = doc.new_page(width=595, height=842)
        page.insert_text((72, 72), f"Section {i}", fontsize=20)
        y = 110.0
        for para in text.split("\n\n"):
            rect = pymupdf.Rect(72, y, 523, y + 200)
            page.insert_textbox(rect, para, fontsize=11)
            y += 210
    if title:
        doc.set_metadata({"title": title})
    doc.save(str(path))
    doc.close()
    return path


@pytest.fixture
def fake_kb_settings():  # type: ignore[no-untyped-def]
    from retrieval.settings import KBSettings

    return KBSettings(text_model="fake", image_model="fake", tag_images=False)


os.environ.setdefault("CITELINE_HOME", str(ROOT / ".citeline" / "test-home"))



@pytest.fixture(scope="session")
def pg_server():  # type: ignore[no-untyped-def]
    """One real PostgreSQL + pgvector server for the session (tests/pg_fixture.py), stopped by PID at the end."""
    from tests import pg_fixture

    reason = pg_fixture.missing_reason()
    if reason:
        pytest.skip(reason)
    server = pg_fixture.start_primary()
    try:
        yield server
    finally:
        pg_fixture.remove(server)


@pytest.fixture
def pg_dsn(pg_server, request: pytest.FixtureRequest) -> str:  # type: ignore[no-untyped-def]
    """A fresh, empty database on the session's server."""
    import re

    from tests import pg_fixture

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    return pg_fixture.create_database(pg_server, name)
