"""The headless HTTP API: a thin FastAPI layer that translates HTTP to SDK calls and our types' JSON back.

    citeline serve --kb DIR                      # http://127.0.0.1:8000/docs for the OpenAPI page (no key set)
    curl -H "Authorization: Bearer $CITELINE_SERVER_KEY" -F files=@manual.pdf localhost:8000/v1/ingest
    curl -H "Authorization: Bearer $CITELINE_SERVER_KEY" -d '{"question": "Battery life?"}' localhost:8000/v1/ask

Endpoints: GET /health; under /v1 (bearer key when one is configured): GET status, GET documents, POST ingest
(multipart `files`, or JSON `paths` inside the uploads folder or an allowed root: 202 with a background job;
`?wait=true` for the report), GET jobs and jobs/{id} (progress, per-file errors, the report), DELETE
documents/{doc_id} or documents?path=... (relative to the uploads folder; only uploaded copies are ever deleted
from disk), POST search, POST ask (JSON with an optional base64 `image_b64` the question is about; the answer
as JSON, or Server-Sent Events `sources`, `token`, `answer` with `"stream": true`), GET assets/{path};
OpenAI-compatible GET models and POST chat/completions
(`assistant.server.openai_api`). With a key, GET /openapi.json needs it too and /docs is off.
A failing model endpoint answers 502, a rate-limited one 503 with Retry-After, a timed-out one 504.
Request bodies: `assistant.server.bodies`; uploads and paths: `.files`; SSE: `.sse`; auth, size limit and
errors: `.http`.

Concurrency: the SDK object and its generator are not thread-safe, so reads (status, documents, search, ask)
run one at a time. Writes (ingest, remove) go through a sibling SDK object sharing the same models, so an
ingest neither blocks readers nor closes the reader under them. Ingest jobs run one at a time in a background
thread (`assistant.jobs`); the KB's writer lock keeps out other processes (409).
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import MissingDependency
from retrieval.store import check_writable

try:
    from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
except ModuleNotFoundError as exc:  # the server is an optional edge (the one guard: its modules load through here)
    raise MissingDependency("the HTTP server (fastapi, uvicorn)", "pip install 'citeline[server]'") from exc

from assistant.server.bodies import (
    ASK_RESPONSES,
    UPLOAD_SCHEMA,
    AskIn,
    IngestIn,
    SearchIn,
    ServerLimits,
    allowed_model,
    answer_options,
)
from assistant.server.files import (
    ASSET_TYPES,
    asset_file,
    check_uploads,
    ingest_path,
    query_image_file,
    safe_upload_name,
    save_upload,
    unlink_upload,
    upload_path,
)
from assistant.server.http import BodyLimit, add_error_handlers, bearer_check
from assistant.server.sse import SSE_HEADERS, sse_stream

if TYPE_CHECKING:
    from assistant.chat import ChatSession
    from assistant.sdk import Citeline
    from retrieval.kb_writer import IngestReport, ProgressFn

__all__ = ["ServerLimits", "create_app", "safe_upload_name"]


# -- the app -----------------------------------------------------------------------------------------------
def create_app(sdk: Citeline, *, api_key: str | None, limits: ServerLimits | None = None,
               ingest_roots: Sequence[str | Path] = ()) -> FastAPI:
    """A FastAPI app over `sdk`. With `api_key`, every /v1 route needs `Authorization: Bearer <api_key>`.
    `ingest_roots`: server folders that POST /v1/ingest may name by path (besides the uploads folder)."""
    from assistant.server.openai_api import OpenAIApi

    limits = limits or ServerLimits()
    api = _Api(sdk, limits, tuple(Path(r) for r in ingest_roots))
    auth = bearer_check(api_key)
    # With a key, the server tells nothing about itself without it but /health: the schema is served to key
    # holders only, and the interactive pages are off (they fetch the schema without the key, so cannot work).
    public = api_key is None
    app = FastAPI(title="Citeline", version="0.1.0", description="Answers over your documents, with verified "
                  "citations. Send `Authorization: Bearer <key>` when the server has a key.",
                  openapi_url="/openapi.json" if public else None, docs_url="/docs" if public else None,
                  redoc_url="/redoc" if public else None)
    app.add_api_route("/health", api.health, methods=["GET"])
    if not public:
        app.add_api_route("/openapi.json", lambda: app.openapi(), methods=["GET"], include_in_schema=False,
                          dependencies=[Depends(auth)])
    app.include_router(api.router(auth))
    app.include_router(OpenAIApi(sdk, api.read_lock, limits).router(auth))
    try:  # MCP over streamable HTTP at /mcp: same key, same read lock (assistant.server.mcp_api)
        from assistant.server.mcp_api import mount_mcp
    except MissingDependency:
        pass
    else:
        mount_mcp(app, sdk, api_key=api_key, lock=api.read_lock)
    app.add_middleware(BodyLimit, limit=limits.max_request_bytes)
    add_error_handlers(app)
    return app


class _Api:
    def __init__(self, sdk: Citeline, limits: ServerLimits, ingest_roots: tuple[Path, ...] = ()) -> None:
        from assistant.jobs import JobQueue

        self.sdk = sdk
        # writes go through a sibling sharing settings and models: its refresh never closes the readers' view
        self.writer = sdk.sibling()
        self.jobs = JobQueue(self._run_ingest)  # one writer: ingest jobs run one at a time, in the background
        self.ingest_roots = ingest_roots
        self.limits = limits
        self.read_lock = threading.Lock()
        self.sessions: OrderedDict[str, ChatSession] = OrderedDict()

    def router(self, auth: Callable[..., None]) -> APIRouter:
        r = APIRouter(prefix="/v1", dependencies=[Depends(auth)])
        r.add_api_route("/status", self.status, methods=["GET"])
        r.add_api_route("/documents", self.documents, methods=["GET"])
        r.add_api_route("/documents", self.remove_path, methods=["DELETE"])
        r.add_api_route("/documents/{doc_id}", self.remove_document, methods=["DELETE"])
        r.add_api_route("/ingest", self.ingest, methods=["POST"], openapi_extra=UPLOAD_SCHEMA,
                        responses={202: {"description": "the job, queued or running (poll GET /v1/jobs/{id})"},
                                   200: {"description": "with ?wait=true: the ingest report"}})
        r.add_api_route("/jobs", self.list_jobs, methods=["GET"])
        r.add_api_route("/jobs/{job_id}", self.job, methods=["GET"])
        r.add_api_route("/search", self.search, methods=["POST"])
        r.add_api_route("/ask", self.ask, methods=["POST"], responses=ASK_RESPONSES)
        r.add_api_route("/assets/{path:path}", self.asset, methods=["GET"], response_class=FileResponse)
        return r

    @property
    def uploads(self) -> Path:
        return self.sdk.files_dir / "uploads"

    # -- reading ------------------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return {"status": "ok", "version": "0.1.0"}

    def status(self) -> dict[str, Any]:
        with self.read_lock:
            return self.sdk.status()

    def documents(self) -> dict[str, Any]:
        with self.read_lock:
            rows = self.sdk.documents()
            links = self.sdk.attachment_links([row.doc_id for row in rows if not row.paths])
            return {"documents": [{**asdict(row), "attached_to": links[row.doc_id].to_json() if row.doc_id in links
                                   else None} for row in rows]}

    def search(self, body: SearchIn) -> dict[str, Any]:
        with query_image_file(body.image_b64, self.limits.max_image_bytes) as image, self.read_lock:
            hits = self.sdk.search(body.query, image=image, top_k=body.top_k, docs=body.docs)
        return {"query": body.query, "hits": [hit.to_json() for hit in hits]}

    def ask(self, body: AskIn) -> Any:
        from retrieval.types import SearchFilters

        model = allowed_model(body.model, self.sdk.settings.model)
        filters = SearchFilters(docs=tuple(body.docs)) if body.docs else None
        with ExitStack() as stack:  # the query image file lives until the answer (or its stream) is over
            image = stack.enter_context(query_image_file(body.image_b64, self.limits.max_image_bytes))
            with self.read_lock:
                chat = self._chat(body.session_id, self.sdk.chat(model=model, filters=filters,
                                                                 **answer_options(body)))
                if not body.stream:
                    answer = chat.ask(body.question, image).to_json()
                    if body.chart:  # numbers read from table cells, never from the model (assistant.charts)
                        answer["chart"] = self.sdk.chart(body.question, filters=filters).to_json()
                    return answer
            cleanup = stack.pop_all().close
        return StreamingResponse(sse_stream(lambda: chat.stream(body.question, image), self.read_lock, cleanup),
                                 media_type="text/event-stream", headers=SSE_HEADERS)

    def asset(self, path: str) -> FileResponse:
        target = asset_file(self.sdk.kb.assets_dir, path)
        return FileResponse(target, media_type=ASSET_TYPES[target.suffix.lower()],
                            headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"})

    def _chat(self, session_id: str | None, fresh: ChatSession) -> ChatSession:
        """The session's history with this request's answerer and filters (a fresh session without an id)."""
        if session_id is None:
            return fresh
        session = self.sessions.pop(session_id, None) or fresh
        session.answerer, session.filters, session.settings = fresh.answerer, fresh.filters, fresh.settings
        self.sessions[session_id] = session
        while len(self.sessions) > self.limits.max_sessions:
            self.sessions.popitem(last=False)
        return session

    # -- writing ------------------------------------------------------------------------------------------
    async def ingest(self, request: Request, wait: bool = False) -> Any:
        """Ingest in the background: uploaded files (multipart field `files`, saved under `<kb>/uploads/`), or
        JSON `{"paths": [...], "prune": false}` naming files or folders on the server (inside the uploads folder
        or an allowed root). Answers 202 with the job at once (poll GET /v1/jobs/{id}); with `?wait=true`, the
        report once the job is done (the job goes on if the client leaves meanwhile)."""
        self._check_writable()
        if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
            body = IngestIn.parse(await request.json())
            paths = [ingest_path(self.uploads, self.ingest_roots, p) for p in body.paths]
            prune = body.prune
        else:
            async with request.form(max_files=self.limits.max_files + 1,
                                    max_fields=self.limits.max_files + 8) as form:
                paths, prune = await asyncio.to_thread(self._save, form.getlist("files")), False
        job = self.jobs.submit(paths, prune=prune)
        if not wait:
            return JSONResponse(job.to_json(), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})
        while (done := self.jobs.get(job.id)) is not None and done.state in ("queued", "running"):
            await asyncio.sleep(0.1)  # polled, holding no thread: a client that leaves cancels only this wait
        if done is None or done.report is None:
            raise done.exception if done is not None and done.exception else HTTPException(500, "the job was lost")
        return {**done.report, "job": done.id}

    def _check_writable(self) -> None:
        """Refuse at once (409, naming the holder) while another process writes and no job of ours is queued:
        a job would only fail. While our own jobs run, the lock is ours and a new job queues behind them."""
        if not self.jobs.busy():
            check_writable(self.sdk.kb_dir)

    def _save(self, files: list[Any]) -> list[str]:
        names = check_uploads(files, self.limits)
        self.uploads.mkdir(parents=True, exist_ok=True)
        return [save_upload(upload, self.uploads / name) for upload, name in zip(files, names, strict=True)]

    def _run_ingest(self, paths: Sequence[str], prune: bool, progress: ProgressFn) -> IngestReport | None:
        return self.writer.ingest(*paths, prune=prune, progress=progress).last_report

    def list_jobs(self) -> dict[str, Any]:
        return {"object": "list", "data": [job.to_json() for job in self.jobs.jobs()]}

    def job(self, job_id: str) -> dict[str, Any]:
        job = self.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} (GET /v1/jobs lists the jobs this server still knows)")
        return job.to_json()

    def remove_document(self, doc_id: str) -> dict[str, Any]:
        with self.read_lock:
            rows = [row for row in self.sdk.documents() if row.doc_id == doc_id]
        if not rows:
            raise HTTPException(404, f"no document with id {doc_id!r} (GET /v1/documents lists them)")
        if not rows[0].paths and (parent := self.sdk.attached_to(doc_id)) is not None:
            raise HTTPException(409, f"{rows[0].name} is an attachment of {parent.name}; nothing was removed: "
                                f"remove the message (DELETE /v1/documents/{parent.doc_id}) to remove its attachments")
        moved = [p for p in rows[0].paths if Path(p).resolve() != Path(p)]
        if moved:  # removal resolves paths: through a link now standing there it would forget another file
            raise HTTPException(409, f"{moved[0]} has been replaced by a link since it was ingested; nothing was "
                                "removed: delete the link, then this document")
        return self._remove(list(rows[0].paths))

    def remove_path(self, path: str) -> dict[str, Any]:
        """Forget an uploaded file, or everything under an uploads sub-folder (a path relative to the uploads
        folder; documents ingested from elsewhere are removed by id)."""
        return self._remove([str(upload_path(self.uploads, path))])

    def _remove(self, paths: list[str]) -> dict[str, Any]:
        removed = self.writer.remove(*paths)
        if not removed:
            raise HTTPException(404, f"nothing in the knowledge base under {', '.join(paths)}")
        for path in removed:  # uploaded copies belong to the server; other files are the user's
            unlink_upload(self.uploads, path)
        return {"removed": removed}
