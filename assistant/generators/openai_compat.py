"""Any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, OpenAI), streamed over SSE.

Images travel as base64 data URLs in `image_url` parts, which vision models behind these servers accept.
"""

from __future__ import annotations

import base64
import json
import mimetypes
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from assistant.types import Message, Sampling
from ingest.errors import CitelineError

OPENAI_BASE_URL = "https://api.openai.com/v1"


class EndpointError(CitelineError):
    pass


def parse_openai_spec(spec: str) -> tuple[str, str]:
    """`openai:MODEL@BASE_URL` -> (model, base_url); without `@`, the OpenAI API itself."""
    body = spec.split(":", 1)[1]
    model, _, base_url = body.partition("@")
    if not model:
        raise EndpointError(f"no model name in {spec!r}: write openai:MODEL@BASE_URL, e.g. "
                            "openai:qwen@http://127.0.0.1:8000/v1")
    return model, (base_url or OPENAI_BASE_URL).rstrip("/")


def image_data_url(path: str) -> str:
    mime = mimetypes.guess_type(path)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(Path(path).read_bytes()).decode('ascii')}"


def with_images(messages: Sequence[Message], images: Sequence[str]) -> list[dict[str, Any]]:
    """Attach the images to the last user message as `image_url` content parts."""
    out: list[dict[str, Any]] = [dict(m) for m in messages]
    if not images:
        return out
    last = max(i for i, m in enumerate(out) if m["role"] == "user")
    parts: list[dict[str, Any]] = [{"type": "text", "text": out[last]["content"]}]
    parts += [{"type": "image_url", "image_url": {"url": image_data_url(p)}} for p in images]
    out[last] = {"role": "user", "content": parts}
    return out


class OpenAICompatGenerator:
    def __init__(self, model: str, base_url: str = OPENAI_BASE_URL, *, api_key: str | None = None,
                 supports_images: bool = False, timeout: float = 120.0) -> None:
        if base_url.startswith(OPENAI_BASE_URL) and not api_key:
            raise EndpointError("the OpenAI API needs a key: set OPENAI_API_KEY (or CITELINE_API_KEY)")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.supports_images = supports_images
        self.cites_reliably = True
        self.timeout = timeout
        self.name = f"openai:{model}@{self.base_url}"

    def _payload(self, messages: Sequence[Message], images: Sequence[str], s: Sampling) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model, "stream": True, "messages": with_images(messages, images if self.supports_images else ()),
            "temperature": s.temperature, "top_p": s.top_p, "max_tokens": s.max_tokens,
        }
        if s.seed is not None:
            payload["seed"] = s.seed
        if s.stop:
            payload["stop"] = list(s.stop)
        if s.top_k:
            payload["top_k"] = s.top_k  # not in OpenAI's schema; vLLM, llama.cpp and Ollama honour it
        return payload

    def stream(self, messages: Sequence[Message], images: Sequence[str] = (),
               sampling: Sampling | None = None) -> Iterator[str]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        payload = self._payload(messages, images, sampling or Sampling())
        url = f"{self.base_url}/chat/completions"
        try:
            with httpx.Client(timeout=self.timeout) as client, client.stream("POST", url, json=payload,
                                                                            headers=headers) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise EndpointError(f"{url} answered {resp.status_code}: {resp.text[:300]}")
                yield from _sse_content(resp.iter_lines())
        except httpx.HTTPError as e:
            raise EndpointError(f"cannot reach {url}: {e}") from e


def _sse_content(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        event = json.loads(data)
        if event.get("error"):
            raise EndpointError(f"the endpoint reported: {event['error']}")
        for choice in event.get("choices", ()):
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                yield piece
