"""Request bodies and server limits: what a client may send to `assistant.server.app`, validated by pydantic
before any SDK call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field


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



UPLOAD_SCHEMA: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}
ASK_RESPONSES: dict[int | str, dict[str, Any]] = {200: {"content": {"text/event-stream": {
    "schema": {"type": "string", "description": "with stream=true: events `sources`, `token`..., `answer`"}}}}}
