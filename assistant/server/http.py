"""HTTP plumbing of `assistant.server.app`: the bearer-key check, the request-size limit, and errors as HTTP
statuses (our JSON shape, or OpenAI's on the OpenAI-compatible routes). No SDK calls here."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.errors import CitelineError, MissingDependency
from retrieval.errors import EmbedderMismatch, KBError, KBLocked

log = logging.getLogger("citeline.server")

_BEARER = HTTPBearer(auto_error=False, description="the server's CITELINE_SERVER_KEY")


def bearer_check(api_key: str | None) -> Callable[..., None]:
    def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]) -> None:
        if api_key is None:
            return
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, api_key.encode()):
            raise HTTPException(401, "missing or invalid API key: send `Authorization: Bearer <key>` with the "
                                "server's CITELINE_SERVER_KEY", headers={"WWW-Authenticate": "Bearer"})

    return check



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

