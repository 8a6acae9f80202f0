"""The HTTP edge of `assistant.server`: request bodies, uploads, query images, Server-Sent Events, errors and
the request-size limit. No SDK calls here; `assistant.server` maps routes to the SDK."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import os
import re
import shutil
import tempfile
import threading
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

from ingest.errors import CitelineError, MissingDependency
from ingest.formats import SUPPORTED
from retrieval.errors import EmbedderMismatch, KBError, KBLocked

try:
    from fastapi import FastAPI, HTTPException, Request, Security
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
    from pydantic import BaseModel, ConfigDict, Field
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ModuleNotFoundError as exc:  # the server is an optional edge
    raise MissingDependency("the HTTP server (fastapi, uvicorn)", "pip install 'citeline[server]'") from exc

log = logging.getLogger("citeline.server")

ASSET_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
_UNSAFE_NAME = re.compile(r"[^\w.\- ()+,]")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_END = object()
_BEARER = HTTPBearer(auto_error=False, description="the server's CITELINE_SERVER_KEY")



@dataclass(frozen=True)
class ServerLimits:
    max_file_bytes: int = 100 * 2**20  # one uploaded file
    max_files: int = 16  # files in one upload
    max_request_bytes: int = 256 * 2**20  # any request body, refused before it is read when declared
    max_image_bytes: int = 10 * 2**20  # a decoded query image
    max_sessions: int = 256  # chat sessions kept (least recently used dropped)


# -- request bodies ----------------------------------------------------------------------------------------
class SamplingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0, le=1000)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    seed: int | None = None
    stop: list[str] | None = Field(None, max_length=8)


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str | None = Field(None, min_length=1, max_length=4000)
    top_k: int = Field(10, ge=1, le=100)
    docs: list[str] = Field(default_factory=list, max_length=100, description="document names or ids")
    image_b64: str | None = Field(None, description="a query image (PNG, JPEG, ...), base64-encoded")


class AskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1, max_length=4000)
    model: str | None = Field(None, max_length=200, description="a named model; paths and URLs only as configured")
    top_k: int | None = Field(None, ge=1, le=50, description="passages retrieved")
    sampling: SamplingIn | None = None
    stream: bool = False
    session_id: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[\w.\-]+$")
    docs: list[str] = Field(default_factory=list, max_length=100, description="only search these documents")
    image_b64: str | None = Field(None, description="a picture the question is about (PNG, JPEG, ...), base64: "
                                  "searched with the question and shown first to a vision-capable model")
    chart: bool = Field(False, description="also chart the numbers the question asks for from the documents' tables: "
                        "the answer JSON gets `chart` (a Vega-Lite spec, every point with its cited, checked cell)")


class IngestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[str] = Field(min_length=1, max_length=1000, description="files or folders: relative to the "
                             "uploads folder, or absolute inside a folder the server allows (serve --ingest-root)")
    prune: bool = Field(False, description="forget files gone from these folders")

    @classmethod
    def parse(cls, raw: Any) -> IngestIn:
        from pydantic import ValidationError

        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None


# -- HTTP helpers --------------------------------------------------------------------------------------------
def bearer_check(api_key: str | None) -> Callable[..., None]:
    def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]) -> None:
        if api_key is None:
            return
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, api_key.encode()):
            raise HTTPException(401, "missing or invalid API key: send `Authorization: Bearer <key>` with the "
                                "server's CITELINE_SERVER_KEY", headers={"WWW-Authenticate": "Bearer"})

    return check


def allowed_model(model: str | None, configured: str) -> str | None:
    """Clients may name models (qwen, smollm2, extractive, ...); paths and URLs only as the server configured."""
    if model is None or model == configured or ":" not in model:
        return model
    raise HTTPException(400, f"model {model!r} is not allowed: name a model (e.g. qwen, smollm2, extractive); "
                        "file paths and endpoints are chosen when the server starts (citeline serve --model)")


def answer_options(body: AskIn) -> dict[str, Any]:
    sampling = body.sampling.model_dump(exclude_none=True) if body.sampling else {}
    if "top_k" in sampling:
        sampling["sample_top_k"] = sampling.pop("top_k")
    if "stop" in sampling:
        sampling["stop"] = tuple(sampling["stop"])
    return {"top_k": body.top_k, **sampling}


def check_uploads(files: list[Any], limits: ServerLimits) -> list[str]:
    """Validate every upload before anything is written: names, count, types and sizes."""
    if not files or not all(isinstance(f, UploadFile) for f in files):
        raise HTTPException(400, "send one or more files in the multipart field `files`")
    if len(files) > limits.max_files:
        raise HTTPException(400, f"at most {limits.max_files} files per upload")
    names = [safe_upload_name(f.filename or "") for f in files]
    if len(set(names)) != len(names):
        raise HTTPException(400, f"duplicate file names in one upload: {', '.join(sorted(names))}")
    for upload, name in zip(files, names, strict=True):
        if Path(name).suffix.lower() not in SUPPORTED:
            raise HTTPException(415, f"{name}: unsupported file type; supported: {' '.join(SUPPORTED)}")
        if _upload_size(upload) > limits.max_file_bytes:
            raise HTTPException(413, f"{name} is larger than the {limits.max_file_bytes} bytes allowed per file")
    return names


def safe_upload_name(raw: str, max_chars: int = 120) -> str:
    """A client file name reduced to a plain, visible file name: no folders, no `..`, no control characters."""
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    stem, suffix = os.path.splitext(name)
    name = stem[: max_chars - len(suffix)] + suffix
    if not stem.strip("._ "):
        raise HTTPException(400, f"invalid file name {raw!r}")
    return name


def _upload_size(upload: UploadFile) -> int:
    if upload.size is not None:
        return upload.size
    upload.file.seek(0, os.SEEK_END)
    size = upload.file.tell()
    upload.file.seek(0)
    return size


def save_upload(upload: UploadFile, target: Path) -> str:
    """Write atomically (a hidden part file, then rename), so a reader never sees half a file. The part file is
    new and exclusive (never an existing file or a link planted where it would go)."""
    fd, part = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        upload.file.seek(0)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(upload.file, out, 2**20)
        os.replace(part, target)
    except BaseException:
        Path(part).unlink(missing_ok=True)
        raise
    return str(target)


@contextmanager
def query_image_file(image_b64: str | None, max_bytes: int) -> Iterator[str | None]:
    """A base64 query image as a temporary file, checked to be a readable picture."""
    if image_b64 is None:
        yield None
        return
    if len(image_b64) > (max_bytes * 4) // 3 + 4:
        raise HTTPException(413, f"image_b64 is larger than the {max_bytes} bytes allowed")
    try:
        data = base64.b64decode(image_b64, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, "image_b64 is not valid base64") from None
    suffix = _image_suffix(data)
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="citeline-query-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        yield path
    finally:
        os.unlink(path)


def _image_suffix(data: bytes) -> str:
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            kind = (image.format or "png").lower()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise HTTPException(400, "image_b64 is not a readable image (PNG, JPEG, WebP, ...)") from None
    return f".{kind}"


def upload_path(root: Path, rel: str) -> Path:
    """A file or folder named by a client, relative to the uploads folder `root`; a path that is absolute,
    climbs out (`..`, also through a symlink) or is not plain text is refused before anything is touched."""
    parts = rel.replace("\\", "/").split("/")
    if not rel.strip() or "\x00" in rel or rel.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        raise HTTPException(400, f"invalid path {rel!r}: name a file or folder relative to the uploads folder "
                            "(GET /v1/documents lists them; DELETE /v1/documents/{doc_id} removes any document)")
    root = root.resolve()
    target = root / rel
    if not target.resolve().is_relative_to(root):
        raise HTTPException(400, f"invalid path {rel!r}: it leads out of the uploads folder")
    return target


def ingest_path(uploads: Path, roots: Sequence[Path], raw: str) -> str:
    """A file or folder a client asks the server to ingest: relative to the uploads folder, or absolute inside
    the uploads folder or one of `roots`; it must exist. Anything else is a 400 before a job is made."""
    if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
        raise HTTPException(400, f"invalid path {raw!r}")
    given = Path(raw).expanduser()
    if not given.is_absolute():
        if ".." in raw.replace("\\", "/").split("/"):
            raise HTTPException(400, f"invalid path {raw!r}: `..` is not allowed")
        given = uploads / given
    target = given.resolve()
    allowed = [uploads.resolve(), *(Path(r).resolve() for r in roots)]
    if not any(target.is_relative_to(root) for root in allowed):
        raise HTTPException(400, f"{raw!r} is outside the folders this server ingests from (the uploads folder"
                            f"{', ' + ', '.join(str(r) for r in allowed[1:]) if roots else ''}); upload the "
                            "files instead, or start the server with --ingest-root")
    if not target.exists():
        raise HTTPException(400, f"{raw!r}: no such file or folder on the server")
    return str(target)


def unlink_upload(root: Path, path: str) -> bool:
    """Delete `path` when it is a server-owned copy: a file (or link, never its target) whose folder lies
    inside the uploads folder `root`. Anything else is the user's and stays."""
    file = Path(path)
    if not file.parent.resolve().is_relative_to(root.resolve()) or not (file.is_symlink() or file.is_file()):
        return False
    file.unlink()
    return True


def asset_file(root: Path, rel: str) -> Path:
    """A page thumbnail or figure crop inside `root`; anything that could leave it is refused."""
    parts = rel.split("/")
    if not rel or "\x00" in rel or "\\" in rel or rel.startswith("/") or ".." in parts or ":" in parts[0]:
        raise HTTPException(400, f"invalid asset path {rel!r}: use a path relative to the assets folder")
    root = root.resolve()
    target = (root / rel).resolve()
    if not target.is_relative_to(root) or not target.is_file() or target.suffix.lower() not in ASSET_TYPES:
        raise HTTPException(404, f"no asset {rel!r}")
    return target


# -- streaming -----------------------------------------------------------------------------------------------
class SseRender(Protocol):
    """How answer-stream events become SSE text: our named events, or OpenAI's `chat.completion.chunk`s."""

    def event(self, event: Any) -> str: ...  # '' sends nothing

    def error(self, status: int, message: str) -> str: ...


class NamedEvents:
    """`event: sources|token|answer|error` frames with the event's JSON."""

    def event(self, event: Any) -> str:
        return sse_frame(event.type, event.to_json())

    def error(self, status: int, message: str) -> str:
        return sse_frame("error", {"type": "error", "status": status, "error": message})


async def sse_stream(start: Callable[[], Any], lock: threading.Lock,
                     after: Callable[[], None] = lambda: None, render: SseRender | None = None) -> AsyncIterator[str]:
    """Run the answer stream in its own thread (holding the read lock until it ends) and relay its events as
    SSE frames. When the client goes away the stream is cancelled; the thread finishes and frees the lock.
    `after` runs in that thread once the stream is over (e.g. removing a temporary query image)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    gone = threading.Event()

    def put(item: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    threading.Thread(target=_pump, args=(start, lock, gone, put, after, render or NamedEvents()), daemon=True,
                     name="citeline-sse").start()
    try:
        while (item := await queue.get()) is not _END:
            if item:
                yield item
    finally:
        gone.set()


def _pump(start: Callable[[], Any], lock: threading.Lock, gone: threading.Event, put: Callable[[Any], None],
          after: Callable[[], None], render: SseRender) -> None:
    try:
        with lock:
            stream = start()
            for event in stream.events():
                if gone.is_set():
                    stream.cancel()
                put(render.event(event))
    except Exception as exc:  # the status line is gone: report in-band
        status, message = error_status(exc)
        put(render.error(status, message))
    finally:
        after()
        put(_END)


def sse_frame(event: str, data: dict[str, Any]) -> str:
    import json

    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


# -- errors --------------------------------------------------------------------------------------------------
def _status_table() -> tuple[tuple[type[BaseException], int], ...]:
    from assistant.errors import ChatModelMissing

    return ((KBLocked, 409), (EmbedderMismatch, 409),
            (KBError, 404),  # "no knowledge base at ...: create one"
            (ChatModelMissing, 503), (MissingDependency, 503),
            (ValueError, 400), (NotImplementedError, 400),  # SearchError, UnknownGenerator, text queries unsupported
            (FileNotFoundError, 404), (CitelineError, 500))


def error_status(exc: BaseException) -> tuple[int, str]:
    from assistant.errors import EndpointError

    if isinstance(exc, StarletteHTTPException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, EndpointError):  # 502 broken upstream, 503 rate limited (Retry-After), 504 timed out
        return exc.status, f"the model endpoint failed: {exc}"
    if isinstance(exc, CitelineError | FileNotFoundError):
        status = next(code for kind, code in _status_table() if isinstance(exc, kind))
        return status, str(exc)
    log.error("unexpected error", exc_info=exc)
    return 500, f"internal server error ({type(exc).__name__}); the details are in the server log"


class OpenAIError(HTTPException):
    """An error on the OpenAI-compatible routes, with the `param` and `code` OpenAI's error shape carries."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(status, message)
        self.param, self.code = param, code


OPENAI_PATHS = ("/v1/chat/", "/v1/models")
_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 409: "conflict_error", 413: "invalid_request_error", 429: "rate_limit_error"}
_OPENAI_CODES = {401: "invalid_api_key", 404: "not_found", 413: "request_too_large", 503: "unavailable"}


def openai_error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code or _OPENAI_CODES.get(status)}}


def _error_response(request: Request, status: int, message: str, exc: Exception | None = None) -> JSONResponse:
    headers = getattr(exc, "headers", None)
    if request.url.path.startswith(OPENAI_PATHS):  # what OpenAI clients parse (and raise as their own errors)
        body = openai_error_body(status, message, getattr(exc, "param", None), getattr(exc, "code", None))
        return JSONResponse(body, status_code=status, headers=headers)
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def add_error_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        status, message = error_status(exc)
        return _error_response(request, status, message, exc)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        errors = exc.errors() if isinstance(exc, RequestValidationError) else []
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors)
        return _error_response(request, 400, f"invalid request: {where}")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(CitelineError, http_error)
    app.add_exception_handler(FileNotFoundError, http_error)
    app.add_exception_handler(Exception, http_error)


class BodyLimit:
    """Refuse request bodies over `limit` bytes: before reading when Content-Length says so, else as they arrive."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            body = (openai_error_body(413, self._message()) if str(scope.get("path", "")).startswith(OPENAI_PATHS)
                    else {"error": self._message(), "status": 413})
            response = JSONResponse(body, status_code=413)
            return await response(scope, receive, send)
        received = 0

        async def bounded() -> Any:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, self._message())
            return message

        await self.app(scope, bounded, send)

    def _message(self) -> str:
        return f"request body larger than the {self.limit} bytes allowed"


UPLOAD_SCHEMA: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}
ASK_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {
    "schema": {"type": "string", "description": "with stream=true: events `sources`, `token`..., `answer`"}}}}}
