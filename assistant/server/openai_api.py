"""OpenAI-compatible chat over the served knowledge base: `GET /v1/models`, `POST /v1/chat/completions`.

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key=os.environ.get("CITELINE_SERVER_KEY", "none"))
    reply = client.chat.completions.create(model="citeline", messages=[{"role": "user", "content": "Battery?"}])

Model ids: `citeline` is the served KB with the server's default generator (`citeline serve --model`);
`citeline:NAME` the same KB answered by a named model (`extractive`, `qwen`, `smollm2`, or one the server has
loaded). `messages` become a chat session: earlier user/assistant turns are the history (a follow-up is
rewritten into a standalone query), the last user message is the question, an `image_url` data URL in it is a
query image; system messages are ignored (the KB's grounding prompt is used). `temperature`, `top_p`,
`max_tokens` (or `max_completion_tokens`), `seed` and `stop` map onto our Sampling; unknown fields are ignored.

The reply keeps its `[n]` markers and ends with a "Sources:" list (document, page); an abstention says so and
lists the closest sources. The response also carries `citations` (doc, page, bbox, quote, verdict, ...) and
`citeline` (abstained, the searched query, the sources). Only checked text is ever sent: with `stream: true`
the first chunk (`role: assistant`) goes out when the sources are found, the content deltas once the reply is
verified, then a chunk with `finish_reason: "stop"` and the citations, then `data: [DONE]`.
Errors are OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from assistant.server.bodies import ServerLimits
from assistant.server.files import query_image_file
from assistant.server.http import OpenAIError, openai_error_body
from assistant.server.sse import SSE_HEADERS, sse_stream
from retrieval.rewrite import Turn

if TYPE_CHECKING:
    from assistant.sdk import Citeline
    from assistant.types import Answer, StreamEvent

MODEL_ID = "citeline"
NAMED_MODELS = ("extractive", "qwen", "qwen-1.5b", "smollm2")
SOURCES_HEADINGS = ("Sources:", "Closest sources:")
_TAIL = re.compile(r"\n\n(?:Sources|Closest sources):\n(?:- .*(?:\n|$))+\s*$")
_DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,(?P<data>.*)$", re.S)


# -- the request -----------------------------------------------------------------------------------------
class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)  # unknown fields ignored; wrong types refused


class ImageUrlIn(_Lenient):
    url: str = Field(min_length=1)


class PartIn(_Lenient):
    type: Literal["text", "image_url"]
    text: str | None = None
    image_url: ImageUrlIn | None = None


class MessageIn(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[PartIn] | None = None


class ChatIn(_Lenient):
    model: str = Field(min_length=1, max_length=200)
    messages: list[MessageIn] = Field(min_length=1, max_length=500)
    stream: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = Field(None, ge=1, le=1)


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat completion request in our terms."""

    model: str  # the id the client named (echoed back)
    spec: str | None  # the generator spec (None: the server's default)
    question: str
    history: tuple[Turn, ...]
    image_b64: str | None
    image_param: str | None  # where the image came from, for error messages
    options: dict[str, Any]
    stream: bool


def parse_chat(raw: bytes, models: dict[str, str | None]) -> ChatRequest:
    """The request body → a ChatRequest, or an OpenAIError (400) naming the offending parameter."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise OpenAIError(400, "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise OpenAIError(400, "the request body must be a JSON object")
    try:
        body = ChatIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = _param(first.get("loc", ()))
        raise OpenAIError(400, f"invalid {param or 'request'}: {first.get('msg', 'invalid value')}",
                          param=param or None, code="invalid_value") from None
    if body.model not in models:
        raise OpenAIError(400, f"unknown model {body.model!r}; GET /v1/models lists this server's models "
                          f"({', '.join(models)})", param="model", code="model_not_found")
    question, image, image_param = _last_user_message(body.messages)
    return ChatRequest(model=body.model, spec=models[body.model], question=question,
                       history=_history(body.messages[:-1]), image_b64=image, image_param=image_param,
                       options=_sampling(body), stream=body.stream)


def _param(loc: tuple[Any, ...] | list[Any]) -> str:
    """A pydantic error location as OpenAI writes a parameter: `messages[1].content`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[PartIn]", "list[str]") or "[" in str(part) or str(part).startswith("function-"):
            continue  # the union member pydantic tried, not a field
        else:
            out += f".{part}" if out else str(part)
    return out


def _last_user_message(messages: list[MessageIn]) -> tuple[str, str | None, str | None]:
    last, at = messages[-1], len(messages) - 1
    if last.role != "user":
        raise OpenAIError(400, f"the last message must be the user's question (it is {last.role!r})",
                          param=f"messages[{at}].role")
    text, image, image_param = "", None, None
    if isinstance(last.content, str):
        text = last.content
    for j, part in enumerate(last.content if isinstance(last.content, list) else []):
        if part.type == "text":
            text += ("\n" if text else "") + (part.text or "")
        elif image is not None:
            raise OpenAIError(400, "at most one image per question", param=f"messages[{at}].content[{j}]")
        else:
            image_param = f"messages[{at}].content[{j}].image_url"
            image = _data_url(part.image_url.url if part.image_url else "", image_param)
    if not text.strip():
        raise OpenAIError(400, "the last user message has no text: ask a question (an image may come with it)",
                          param=f"messages[{at}].content")
    return text.strip()[:4000], image, image_param


def _data_url(url: str, param: str) -> str:
    match = _DATA_URL.match(url)
    if match is None:
        raise OpenAIError(400, "an image must be a base64 data URL (data:image/png;base64,...); the server "
                          "fetches nothing from the network", param=param, code="invalid_image_url")
    data = re.sub(r"\s+", "", match.group("data"))
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise OpenAIError(400, "the image data URL is not valid base64", param=param, code="invalid_image") from None
    return data


def _history(messages: list[MessageIn]) -> tuple[Turn, ...]:
    """user/assistant pairs before the question (our own Sources lists taken off the assistant's turns)."""
    turns: list[Turn] = []
    for message in messages:
        text = _text(message)
        if message.role == "user":
            turns.append(Turn(text))
        elif message.role == "assistant" and turns and not turns[-1].answer:
            turns[-1] = Turn(turns[-1].question, _TAIL.sub("", text).strip())
    return tuple(t for t in turns if t.question)


def _text(message: MessageIn) -> str:
    if isinstance(message.content, str):
        return message.content
    return "\n".join(p.text or "" for p in message.content or [] if p.type == "text")


def _sampling(body: ChatIn) -> dict[str, Any]:
    options: dict[str, Any] = {"temperature": body.temperature, "top_p": body.top_p, "seed": body.seed,
                               "max_tokens": body.max_completion_tokens or body.max_tokens}
    if body.stop:
        options["stop"] = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop[:8])
    return {k: v for k, v in options.items() if v is not None}


# -- the reply -------------------------------------------------------------------------------------------
def reply_text(answer: Answer) -> str:
    """The answer with its `[n]` markers, then the cited sources (or, for an abstention, the closest ones)."""
    cited = {c.n for c in answer.citations}
    listed = list(answer.sources) if answer.abstained else [s for s in answer.sources if s.n in cited]
    if not listed:
        return answer.text
    heading = SOURCES_HEADINGS[1] if answer.abstained else SOURCES_HEADINGS[0]
    lines = [f"- [{s.n}] {s.doc}, page {s.page}" for s in sorted(listed, key=lambda s: s.n)]
    return f"{answer.text}\n\n{heading}\n" + "\n".join(lines)


def extras(answer: Answer) -> dict[str, Any]:
    """What OpenAI's shape has no field for: the structured citations and our own view of the answer."""
    return {"citations": [c.to_json() for c in answer.citations],
            "citeline": {"abstained": answer.abstained, "query": answer.query,
                         "confidence": round(float(answer.confidence), 4),
                         "sources": [{k: v for k, v in s.to_json().items() if k != "text"} for s in answer.sources],
                         "claims": [c.to_json() for c in answer.checks]}}


def completion(answer: Answer, model: str) -> dict[str, Any]:
    return {"id": _completion_id(), "object": "chat.completion", "created": int(time.time()), "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply_text(answer),
                                                 "refusal": None},
                         "finish_reason": "stop", "logprobs": None}],
            **extras(answer)}


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


class Chunks:
    """Answer-stream events → `chat.completion.chunk` SSE frames (the SseRender protocol)."""

    def __init__(self, model: str) -> None:
        self.id, self.created, self.model = _completion_id(), int(time.time()), model
        self.started = False

    def event(self, event: StreamEvent) -> str:
        out = self._role()
        if event.type == "answer" and event.answer is not None:  # the checked text, then the end
            pieces = re.findall(r"\S+\s*|\s+", reply_text(event.answer))
            out += "".join(self._frame({"content": piece}) for piece in pieces)
            out += self._frame({}, finish="stop", **extras(event.answer)) + "data: [DONE]\n\n"
        return out  # the draft's tokens are not sent: nothing unchecked reaches the client

    def error(self, status: int, message: str) -> str:
        return f"data: {json.dumps(openai_error_body(status, message))}\n\ndata: [DONE]\n\n"

    def _role(self) -> str:
        if self.started:
            return ""
        self.started = True
        return self._frame({"role": "assistant", "content": ""})

    def _frame(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                 "system_fingerprint": None,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
        return f"data: {json.dumps(chunk)}\n\n"


# -- the routes ------------------------------------------------------------------------------------------
class OpenAIApi:
    def __init__(self, sdk: Citeline, read_lock: threading.Lock, limits: ServerLimits) -> None:
        self.sdk, self.read_lock, self.limits = sdk, read_lock, limits
        self.created = int(time.time())

    def router(self, auth: Callable[..., None]) -> APIRouter:
        r = APIRouter(prefix="/v1", dependencies=[Depends(auth)], tags=["OpenAI-compatible"])
        r.add_api_route("/models", self.list_models, methods=["GET"])
        r.add_api_route("/chat/completions", self.chat, methods=["POST"],
                        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                            "schema": ChatIn.model_json_schema()}}}})
        return r

    def models(self) -> dict[str, str | None]:
        """Model id → generator spec (None: the server's default)."""
        default = self.sdk.settings.model
        names = [*NAMED_MODELS, *(n for n in self.sdk._generators if ":" not in n)]
        if ":" not in default:
            names.insert(0, default)
        return {MODEL_ID: None, **{f"{MODEL_ID}:{n}": n for n in dict.fromkeys(names)}}

    def list_models(self) -> dict[str, Any]:
        kb = self.sdk.location.rstrip("/").rsplit("/", 1)[-1]
        return {"object": "list", "data": [
            {"id": model, "object": "model", "created": self.created, "owned_by": "citeline",
             "description": f"answers from the knowledge base {kb!r} with "
                            f"{'the default model, ' + self.sdk.settings.model if spec is None else spec}"}
            for model, spec in self.models().items()]}

    async def chat(self, request: Request) -> Any:
        req = parse_chat(await request.body(), self.models())
        return await run_in_threadpool(self._complete, req)

    def _complete(self, req: ChatRequest) -> Any:
        with ExitStack() as stack:  # the query image file lives until the answer (or its stream) is over
            image = stack.enter_context(self._image(req))
            with self.read_lock:
                chat = self.sdk.chat(model=req.spec, **req.options)
                chat.history = list(req.history)
                if not req.stream:
                    return completion(chat.ask(req.question, image), req.model)
            cleanup = stack.pop_all().close
        return StreamingResponse(sse_stream(lambda: chat.stream(req.question, image), self.read_lock, cleanup,
                                            render=Chunks(req.model)),
                                 media_type="text/event-stream", headers=SSE_HEADERS)

    @contextmanager
    def _image(self, req: ChatRequest) -> Iterator[str | None]:
        """The query image as a file, with errors naming the message part it came from."""
        files = query_image_file(req.image_b64, self.limits.max_image_bytes)
        try:
            path = files.__enter__()
        except HTTPException as exc:
            message = str(exc.detail).replace("image_b64", "the image")
            raise OpenAIError(exc.status_code, message, param=req.image_param, code="invalid_image") from None
        with ExitStack() as stack:
            stack.push(files)
            yield path
