"""The Model Context Protocol server: a knowledge base as tools and resources for agent hosts (Claude Desktop,
IDE agents), on the official `mcp` SDK.

    citeline mcp --kb DIR [--model extractive] [--allow-ingest]      # stdio, for an MCP host's config
    citeline serve --kb DIR                                          # streamable HTTP at /mcp, same bearer key

Tools: `search` (hits with document, page, bbox and the retrievers that found them), `ask` (the cited answer, each
citation with its verdict), `get_page` (a page as a PNG image plus its text), `list_documents`; `ingest` (server-side
paths) only with `allow_ingest`, and never over HTTP. Resources: `citeline://documents` and one
`citeline://documents/{doc_id}` per document (its pages' text).

Like the HTTP API, reads go one at a time through the SDK object (it is not thread-safe; the SDK runs tools in
worker threads), and writes through a sibling SDK object, so an ingest never closes the readers' view.
"""

from __future__ import annotations

import hmac
import io
import json
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated, Any

from ingest.errors import CitelineError, MissingDependency

try:
    import anyio.to_thread
    import mcp_types as mt
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
    from pydantic import Field
except ModuleNotFoundError as exc:  # an optional edge, like the HTTP server
    raise MissingDependency("the MCP server (mcp)", "pip install 'citeline[server]'") from exc

if TYPE_CHECKING:
    from assistant.sdk import Citeline
    from assistant.types import Answer

DOCUMENTS_URI = "citeline://documents"
INSTRUCTIONS = ("Citeline answers questions over a knowledge base of the user's documents. Use `ask` for a cited, "
                "verified answer (only quote sentences whose citation is verified), `search` to find passages, "
                "`get_page` to look at a cited page, `list_documents` to see what the knowledge base holds.")


@dataclass(frozen=True)
class McpSettings:
    model: str | None = None  # the generator spec for `ask` (default: the SDK's configured model)
    allow_ingest: bool = False  # expose the `ingest` tool (server-side paths: stdio only)
    max_top_k: int = 50
    max_page_side: int = 1600  # the page image's longest side, in pixels


def build_mcp(sdk: Citeline, settings: McpSettings | None = None,
              lock: AbstractContextManager[Any] | None = None) -> MCPServer:
    """An MCP server over `sdk`. `lock` serialises reads with other users of the same SDK object (the HTTP
    API's read lock when mounted in `citeline serve`)."""
    return _Tools(sdk, settings or McpSettings(), lock or threading.Lock()).server()


class _Server(MCPServer):
    """Lists each document as a concrete resource, so a host's resource picker shows them."""

    documents: Callable[[], list[Any]]

    async def list_resources(self) -> list[mt.Resource]:
        fixed = await super().list_resources()
        rows = await anyio.to_thread.run_sync(self.documents)
        return fixed + [mt.Resource(name=row.name, title=row.title or row.name, uri=f"{DOCUMENTS_URI}/{row.doc_id}",
                                    description=f"{row.kind}, {row.pages} pages", mime_type="text/markdown")
                        for row in rows]


class _Tools:
    def __init__(self, sdk: Citeline, settings: McpSettings, lock: AbstractContextManager[Any]) -> None:
        self.sdk, self.settings, self.lock = sdk, settings, lock
        self._writer: Citeline | None = None

    def server(self) -> MCPServer:
        mcp = _Server("citeline", title="Citeline", version="0.1.0", instructions=INSTRUCTIONS, log_level="WARNING")
        mcp.documents = self.documents_rows
        read_only = mt.ToolAnnotations(read_only_hint=True, open_world_hint=False)
        mcp.tool(annotations=read_only)(self.search)
        mcp.tool(annotations=read_only)(self.ask)
        mcp.tool(annotations=read_only)(self.get_page)
        mcp.tool(annotations=read_only)(self.list_documents)
        if self.settings.allow_ingest:
            mcp.tool(annotations=mt.ToolAnnotations(read_only_hint=False, destructive_hint=False,
                                                    idempotent_hint=True, open_world_hint=False))(self.ingest)
        mcp.resource(DOCUMENTS_URI, name="documents", mime_type="application/json",
                     description="every document in the knowledge base")(self.documents_resource)
        mcp.resource(DOCUMENTS_URI + "/{doc_id}", name="document", mime_type="text/markdown",
                     description="a document's pages, as text")(self.document_resource)
        return mcp

    # -- tools (sync: the SDK runs them in worker threads) ----------------------------------------------------
    def search(self, query: Annotated[str, Field(min_length=1, description="what to look for")],
               top_k: Annotated[int, Field(ge=1, le=50, description="how many hits")] = 8,
               docs: Annotated[list[str] | None, Field(description="only these document names or ids")] = None,
               ) -> dict[str, Any]:
        """Hybrid search (dense + BM25 + figures) over the knowledge base: passages, tables and figure
        descriptions with their document, page, bounding box (PDF points) and the retrievers that found them."""
        with self._reading():
            hits = self.sdk.search(query, top_k=min(top_k, self.settings.max_top_k), docs=docs or ())
        return {"query": query, "hits": [_hit(h.to_json()) for h in hits]}

    def ask(self, question: Annotated[str, Field(min_length=1, description="the question")],
            docs: Annotated[list[str] | None, Field(description="only these document names or ids")] = None,
            ) -> mt.CallToolResult:
        """A cited answer from the knowledge base. Every sentence was checked against its source before it is
        shown; each citation says its document, page, quote and verdict. An abstention says so."""
        from retrieval.types import SearchFilters

        filters = SearchFilters(docs=tuple(docs)) if docs else None
        with self._reading():
            answer = self.sdk.ask(question, model=self.settings.model, filters=filters)
        return mt.CallToolResult(content=[mt.TextContent(type="text", text=answer_text(answer))],
                                 structured_content=_answer(answer))

    def get_page(self, doc: Annotated[str, Field(min_length=1, description="a document id or name")],
                 page: Annotated[int, Field(ge=1, description="1-based page number")],
                 ) -> list[mt.TextContent | mt.ImageContent]:
        """A page of a document: its text, and its image (PNG) when the knowledge base keeps one."""
        with self._reading():
            row = self._document(doc)
            if page > row.pages:
                raise ToolError(f"{row.name} has {row.pages} pages; page {page} does not exist")
            text = _page_texts(self.sdk, row.doc_id, page)
            image = self.sdk.page_image(row.doc_id, page)
        header = f"{row.name}, page {page} of {row.pages}"
        content: list[mt.TextContent | mt.ImageContent] = [
            mt.TextContent(type="text", text=f"{header}\n\n{text.get(page, '')}".rstrip())]
        if image is not None and image.thumbnail is not None:
            content.append(mt.ImageContent(type="image", data=_png_b64(image.thumbnail, self.settings.max_page_side),
                                           mime_type="image/png"))
        return content

    def list_documents(self) -> dict[str, Any]:
        """Every document in the knowledge base: id, name, title, kind, pages, passages, figures, source paths."""
        return {"documents": [_document_json(row) for row in self.documents_rows()]}

    def ingest(self, paths: Annotated[list[str], Field(min_length=1, description="files or folders on this machine")],
               prune: Annotated[bool, Field(description="forget files gone from the given folders")] = False,
               ) -> dict[str, Any]:
        """Ingest files or folders into the knowledge base (incremental: unchanged files are skipped). Each
        file's outcome is reported; a bad file fails alone."""
        try:
            report = self.writer.ingest(*paths, prune=prune).last_report
        except (CitelineError, OSError) as exc:
            raise ToolError(str(exc)) from exc
        assert report is not None
        return report.to_json()

    # -- resources --------------------------------------------------------------------------------------------
    def documents_resource(self) -> str:
        rows = self.documents_rows()
        return json.dumps({"documents": [{**_document_json(r), "uri": f"{DOCUMENTS_URI}/{r.doc_id}"} for r in rows]},
                          indent=2)

    def document_resource(self, doc_id: str) -> str:
        with self.lock:
            try:
                row = self._document(doc_id)
                texts = _page_texts(self.sdk, row.doc_id)
            except (ToolError, CitelineError) as exc:
                raise ResourceNotFoundError(str(exc)) from exc
        parts = [f"# {row.title or row.name}", f"{row.name} ({row.kind}, {row.pages} pages, id {row.doc_id})"]
        parts += [f"## Page {n}\n\n{texts[n]}" for n in sorted(texts)]
        return "\n\n".join(parts) + "\n"

    # -- helpers ----------------------------------------------------------------------------------------------
    def documents_rows(self) -> list[Any]:
        with self._reading():
            return list(self.sdk.documents())

    @property
    def writer(self) -> Citeline:
        if self._writer is None:
            self._writer = self.sdk.sibling()
        return self._writer

    def _reading(self) -> _Reading:
        return _Reading(self.lock)

    def _document(self, key: str) -> Any:
        rows = self.sdk.documents()
        found = [r for r in rows if r.doc_id == key] or [r for r in rows if r.name == key]
        if not found:
            raise ToolError(f"no document {key!r} in the knowledge base (list_documents lists them)")
        return found[0]


class _Reading:
    """The read lock, with the SDK's anticipated errors (no KB, a model that fails) told to the client."""

    def __init__(self, lock: AbstractContextManager[Any]) -> None:
        self.lock = lock

    def __enter__(self) -> None:
        self.lock.__enter__()

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        self.lock.__exit__(kind, exc, tb)
        if isinstance(exc, CitelineError | FileNotFoundError):
            raise ToolError(str(exc)) from exc


# -- JSON shapes --------------------------------------------------------------------------------------------
def _hit(data: dict[str, Any]) -> dict[str, Any]:
    return {k: data[k] for k in ("doc", "doc_id", "page", "bbox", "kind", "text", "score", "retrievers", "section")}


def _answer(answer: Answer) -> dict[str, Any]:
    data = answer.to_json()
    keep = ("answer", "abstained", "citations", "sources", "dropped", "claims", "confidence", "model", "query")
    return {k: data[k] for k in keep}


def answer_text(answer: Answer) -> str:
    """The answer as a host shows it: the text with its [n] markers, then each citation with its verdict."""
    lines = [answer.text.strip()]
    if answer.citations:
        lines.append("\nSources:")
        for c in answer.citations:
            check = "verified" if c.verified else "NOT verified"
            lines.append(f"[{c.n}] {c.doc}, page {c.page} ({check}: {c.verdict}) \u2014 \u201c{c.quote}\u201d")
    elif answer.abstained and answer.sources:
        lines.append("\nClosest sources:")
        lines += [f"[{s.n}] {s.doc}, page {s.page}" for s in answer.sources[:5]]
    return "\n".join(lines)


def _document_json(row: Any) -> dict[str, Any]:
    data = asdict(row)
    data["paths"] = list(data["paths"])
    return data


def _page_texts(sdk: Citeline, doc_id: str, page: int | None = None) -> dict[int, str]:
    return sdk.kb.store.page_texts(doc_id, page)


def _png_b64(path: Any, max_side: int) -> str:
    import base64

    from PIL import Image

    with Image.open(path) as stored:
        image = stored.convert("RGB")
    image.thumbnail((max_side, max_side))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode()


# -- streamable HTTP inside `citeline serve` ----------------------------------------------------------------
def mount_mcp(app: Any, sdk: Citeline, *, api_key: str | None, lock: AbstractContextManager[Any],
              settings: McpSettings | None = None, path: str = "/mcp") -> None:
    """Serve MCP over streamable HTTP at `path` of a FastAPI/Starlette `app`, behind the same bearer key. Read
    tools only: an HTTP client must not make the server read paths on its own disk. The MCP session manager
    runs inside the app's lifespan."""
    from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.routing import Route

    mcp = build_mcp(sdk, settings or McpSettings(allow_ingest=False), lock)
    # Without a key the server is on loopback (`citeline serve` refuses otherwise): refuse other Host headers, as the
    # SDK does, against DNS rebinding. With a key, the key is the guard and any host name may reach it.
    security = None if api_key else TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])
    mcp.streamable_http_app(streamable_http_path=path, transport_security=security)  # builds the session manager
    manager, running = mcp.session_manager, threading.Event()
    gate = _BearerGate(StreamableHTTPASGIApp(manager), api_key, running.is_set)
    app.router.routes.append(Route(path, endpoint=gate, methods=["GET", "POST", "DELETE"]))
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with manager.run(), previous(application) as state:
            running.set()
            try:
                yield state
            finally:
                running.clear()

    app.router.lifespan_context = lifespan


class _BearerGate:
    """An ASGI wrapper: `Authorization: Bearer <key>` when the server has a key, as for /v1."""

    def __init__(self, app: Any, api_key: str | None, running: Callable[[], bool]) -> None:
        self.app, self.key, self.running = app, api_key, running

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.key is not None:
            headers = dict(scope.get("headers") or [])
            scheme, _, given = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.key.encode()):
                return await _json(send, 401, "missing or invalid API key: send `Authorization: Bearer <key>` "
                                   "with the server's CITELINE_SERVER_KEY", {"www-authenticate": "Bearer"})
        if not self.running():
            return await _json(send, 503, "the MCP endpoint starts with the server's lifespan, which is off")
        await self.app(scope, receive, send)


async def _json(send: Any, status: int, detail: str, extra: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
