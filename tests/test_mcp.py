"""The MCP server with the official `mcp` SDK's own client: over stdio (`citeline mcp` as a real subprocess) and
over streamable HTTP (a real `citeline serve` on loopback, bearer key). The package fakes embed; `extractive`
answers, so the answers are real, cited and verified without a model."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("mcp")
pytest.importorskip("uvicorn")

import anyio  # noqa: E402
import httpx  # noqa: E402
import httpx2  # noqa: E402
from mcp import Client, MCPError, StdioServerParameters  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from PIL import Image  # noqa: E402

from assistant.cli import main  # noqa: E402
from tests.conftest import ROOT, make_pdf  # noqa: E402

PAGES = [
    "The Aurora X2 battery lasts 14 hours of continuous playback.\n\nCharging takes 90 minutes with the USB-C adapter.",
    "The warranty covers manufacturing defects for two years.\n\nWater resistance is rated IP67.",
]
QUESTION = "How long does the Aurora X2 battery last?"
READ_TOOLS = {"search", "ask", "get_page", "list_documents"}
KEY = "mcp-test-key"


def build_kb(tmp: Path) -> Path:
    docs = tmp / "docs"
    docs.mkdir()
    make_pdf(docs / "manual.pdf", PAGES, title="Aurora X2 manual")
    kb = tmp / "kb"
    assert main(["ingest", str(docs), "--kb", str(kb), "--text-model", "fake", "--image-model", "fake",
                 "--quiet", "--json"]) == 0
    return kb


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_kb(tmp_path_factory.mktemp("mcp"))


def stdio(kb: Path | str, *extra: str) -> Client:
    return Client(StdioServerParameters(
        command=sys.executable, args=["-m", "assistant.cli", "mcp", "--kb", str(kb), "--model", "extractive", *extra],
        cwd=str(ROOT), env={"CITELINE_HOME": os.environ["CITELINE_HOME"]}), read_timeout_seconds=120)


def run(session: Client, body: Callable[[Client], Awaitable[None]]) -> None:
    async def go() -> None:
        with anyio.fail_after(180):
            async with session as client:
                await body(client)

    anyio.run(go)


async def check_read_tools(client: Client) -> None:
    """Every read tool, called through the protocol, checked on what it returns."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == READ_TOOLS, "the ingest tool is offered only with --allow-ingest"
    assert "query" in tools["search"].input_schema["properties"] and tools["ask"].description

    found = await client.call_tool("search", {"query": "warranty manufacturing defects", "top_k": 3})
    assert not found.is_error, found.content
    hit = found.structured_content["hits"][0]
    assert (hit["doc"], hit["page"]) == ("manual.pdf", 2) and "warranty" in hit["text"]
    assert len(hit["bbox"]) == 4 and hit["retrievers"], hit

    answered = await client.call_tool("ask", {"question": QUESTION})
    assert not answered.is_error, answered.content
    answer = answered.structured_content
    assert not answer["abstained"] and "14 hours" in answer["answer"] and "[1]" in answer["answer"]
    cited = answer["citations"][0]
    assert cited["verified"] and cited["verdict"] == "supported" and (cited["doc"], cited["page"]) == ("manual.pdf", 1)
    assert "14 hours" in cited["quote"]
    text = answered.content[0].text
    assert "Sources:" in text and "manual.pdf, page 1 (verified: supported)" in text

    listed = await client.call_tool("list_documents", {})
    docs = listed.structured_content["documents"]
    assert [(d["name"], d["pages"]) for d in docs] == [("manual.pdf", 2)]
    doc_id = docs[0]["doc_id"]

    page = await client.call_tool("get_page", {"doc": doc_id, "page": 2})
    assert not page.is_error, page.content
    kinds = [c.type for c in page.content]
    assert kinds == ["text", "image"] and "warranty" in page.content[0].text
    image = page.content[1]
    png = base64.b64decode(image.data)
    assert image.mime_type == "image/png" and png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as opened:
        assert opened.format == "PNG" and opened.width > 100 and opened.height > opened.width  # an A4 page

    by_name = await client.call_tool("get_page", {"doc": "manual.pdf", "page": 1})
    assert "battery" in by_name.content[0].text
    missing = await client.call_tool("get_page", {"doc": doc_id, "page": 9})
    assert missing.is_error and "has 2 pages" in missing.content[0].text
    unknown = await client.call_tool("get_page", {"doc": "nope.pdf", "page": 1})
    assert unknown.is_error and "no document 'nope.pdf'" in unknown.content[0].text
    invalid = await client.call_tool("search", {"query": "", "top_k": 3})
    assert invalid.is_error

    resources = {str(r.uri) for r in (await client.list_resources()).resources}
    assert {"citeline://documents", f"citeline://documents/{doc_id}"} <= resources
    read = await client.read_resource(f"citeline://documents/{doc_id}")
    body = read.contents[0].text
    assert "## Page 2" in body and "warranty covers manufacturing defects" in body


# -- stdio ------------------------------------------------------------------------------------------------
def test_stdio_read_tools_and_resources(kb: Path) -> None:
    run(stdio(kb), check_read_tools)


def test_stdio_ingest_tool_only_with_the_flag(tmp_path: Path) -> None:
    kb = build_kb(tmp_path)
    extra = tmp_path / "more"
    extra.mkdir()
    (extra / "ferries.txt").write_text("The Ardrossan ferry leaves at 07:15 every weekday.\n")

    async def body(client: Client) -> None:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == READ_TOOLS | {"ingest"}
        done = await client.call_tool("ingest", {"paths": [str(extra)]})
        assert not done.is_error, done.content
        assert done.structured_content["totals"]["ingested"] == 1
        found = await client.call_tool("search", {"query": "Ardrossan ferry weekday"})
        assert found.structured_content["hits"][0]["doc"] == "ferries.txt"  # the readers see the new document
        bad = await client.call_tool("ingest", {"paths": [str(tmp_path / "missing")]})
        assert bad.is_error and "no such file or folder" in bad.content[0].text

    run(stdio(kb, "--allow-ingest"), body)


def test_stdio_without_a_kb_fails_clearly(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "mcp", "--kb", str(tmp_path / "none")], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 2 and "no knowledge base at" in out.stderr and out.stdout == ""


# -- streamable HTTP in `citeline serve` ------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def leaves(exc: BaseException) -> list[BaseException]:
    inner = getattr(exc, "exceptions", None)  # an exception group (anyio's task groups)
    return [leaf for e in inner for leaf in leaves(e)] if inner else [exc]


@pytest.fixture(scope="module")
def served(kb: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serving(kb, tmp_path_factory, KEY) as base:
        yield base


@contextmanager
def serving(kb: Path, tmp_path_factory: pytest.TempPathFactory, key: str | None) -> Iterator[str]:
    port = free_port()
    log = open(tmp_path_factory.mktemp("serve") / "serve.log", "w+")  # noqa: SIM115 (closed below)
    env = {k: v for k, v in os.environ.items() if k != "CITELINE_SERVER_KEY"}
    if key:
        env["CITELINE_SERVER_KEY"] = key
    proc = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--kb", str(kb), "--port", str(port),
                             "--model", "extractive"], cwd=ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)  # polling for the server to listen (a bounded wait)
        log.seek(0)
        assert proc.poll() is None, f"citeline serve exited: {log.read()[-2000:]}"
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def over_http(base: str, key: str | None) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"} if key else {}, timeout=120)
    return Client(streamable_http_client(f"{base}/mcp", http_client=http), read_timeout_seconds=120)


def test_http_read_tools_and_resources(served: str) -> None:
    run(over_http(served, KEY), check_read_tools)


def test_http_refuses_a_wrong_or_missing_key(served: str) -> None:
    for headers in ({"Authorization": "Bearer wrong"}, {}):
        r = httpx.post(f"{served}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                       headers={**headers, "Accept": "application/json, text/event-stream"}, timeout=30)
        assert r.status_code == 401 and "invalid API key" in r.json()["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
    with pytest.raises(BaseException) as refused:  # the SDK's client gets no session either
        run(over_http(served, "wrong"), lambda client: client.list_tools())  # type: ignore[arg-type, return-value]
    assert any(isinstance(e, MCPError) for e in leaves(refused.value)), refused.value
    ok = httpx.get(f"{served}/v1/status", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert ok.status_code == 200  # the same key opens the rest of the API


def test_http_without_a_key_serves_loopback_names_only(kb: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No key (loopback only): MCP works for 127.0.0.1, and a request naming another host (DNS rebinding from a
    web page) is refused."""
    with serving(kb, tmp_path_factory, None) as base:
        async def body(client: Client) -> None:
            assert {t.name for t in (await client.list_tools()).tools} == READ_TOOLS

        run(over_http(base, None), body)
        forged = httpx.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                            headers={"Host": "evil.example:80", "Accept": "application/json, text/event-stream"},
                            timeout=30)
        assert forged.status_code in (400, 421), forged.text
