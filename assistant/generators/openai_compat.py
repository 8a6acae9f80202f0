"""Any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, OpenAI), streamed over SSE.

Images travel as base64 data URLs in `image_url` parts, which vision models behind these servers accept.
"""

from __future__ import annotations

import base64
import json
import math
import mimetypes
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from assistant.errors import EndpointBusy, EndpointError, EndpointTimeout
from assistant.types import Message, Sampling

OPENAI_BASE_URL = "https://api.openai.com/v1"


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
                 supports_images: bool = False, timeout: float | str = 120.0) -> None:
        if base_url.startswith(OPENAI_BASE_URL) and not api_key:
            raise EndpointError("the OpenAI API needs a key: set OPENAI_API_KEY (or CITELINE_API_KEY)")
        seconds = _seconds(timeout)
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.supports_images = supports_images
        self.cites_reliably = True
        self.timeout = seconds
        self.name = f"openai:{model}@{self.base_url}"
        from assistant.generators.base import LARGE_BUDGET

        self.budget = LARGE_BUDGET

    @property
    def _url(self) -> str:
        return f"{self.base_url}/chat/completions"

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _payload(self, messages: Sequence[Message], images: Sequence[str], s: Sampling) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model, "stream": True,
            "messages": with_images(messages, images if self.supports_images else ()),
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

        payload = self._payload(messages, images, sampling or Sampling())
        url = self._url
        try:
            with httpx.Client(timeout=self.timeout) as client, client.stream("POST", url, json=payload,
                                                                            headers=self._headers) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise status_error(url, resp.status_code, resp.text, resp.headers.get("retry-after"))
                yield from _sse_content(resp.iter_lines(), url)
        except httpx.HTTPError as e:
            raise transport_error(url, e, self.timeout) from e

    def yes_no(self, messages: Sequence[Message]) -> float:
        """Log-odds of "Yes" over "No" as the reply's first token, from the endpoint's `top_logprobs` (OpenAI,
        vLLM and llama.cpp's server return them). A word missing from the top list counts as the least likely one
        listed (an upper bound)."""
        import httpx

        payload = {"model": self.model, "messages": [dict(m) for m in messages], "max_tokens": 1,
                   "temperature": 0, "logprobs": True, "top_logprobs": 20, "stream": False}
        url = self._url
        try:
            with httpx.Client(timeout=self.timeout) as client:
                resp = client.post(url, json=payload, headers=self._headers)
        except httpx.HTTPError as e:
            raise transport_error(url, e, self.timeout) from e
        if resp.status_code >= 400:
            raise status_error(url, resp.status_code, resp.text, resp.headers.get("retry-after"))
        try:
            reply = resp.json()
        except ValueError:
            raise EndpointError(f"{url} answered with something that is not JSON: {resp.text[:200]!r}") from None
        return yes_no_logodds(reply, url)


def _seconds(timeout: float | str) -> float:
    try:
        seconds = float(timeout)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise EndpointError(f"invalid endpoint timeout {timeout!r}: give seconds, e.g. CITELINE_API_TIMEOUT=60")
    return seconds


def status_error(url: str, status: int, body: str, retry_after: str | None = None) -> EndpointError:
    """An HTTP error status from the endpoint as a message that says what to do."""
    detail = _error_detail(body)
    if status in (401, 403):
        return EndpointError(f"{url} refused the API key (HTTP {status}: {detail}): set CITELINE_API_KEY or "
                             "OPENAI_API_KEY to a key this endpoint accepts")
    if status == 404:
        return EndpointError(f"{url} answered HTTP 404 ({detail}): check the base URL (it usually ends in /v1) "
                             "and the model name")
    if status == 429:
        wait = f"retry after {retry_after} s" if retry_after and retry_after.isdigit() else \
            f"retry after {retry_after}" if retry_after else "retry later"
        return EndpointBusy(f"{url} is rate limiting requests (HTTP 429: {detail}): {wait}",
                            retry_after=retry_after)
    if status >= 500:
        return EndpointError(f"{url} failed on its side (HTTP {status}: {detail}); the endpoint's own log "
                             "says why", retry_after=retry_after if status == 503 else None)
    return EndpointError(f"{url} refused the request (HTTP {status}: {detail})")


def transport_error(url: str, error: Exception, timeout: float) -> EndpointError:
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return EndpointTimeout(f"{url} did not answer within {timeout:g} s ({type(error).__name__}): the model "
                               "may be overloaded; try again, or raise CITELINE_API_TIMEOUT")
    if isinstance(error, httpx.RemoteProtocolError):
        return EndpointError(f"{url} closed the connection before the reply was complete ({error})")
    return EndpointError(f"cannot reach {url}: {error}")


def _error_detail(body: str) -> str:
    """The message of an OpenAI-style error body (`{"error": {"message": ...}}`), else the body's start."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])[:300]
    if isinstance(error, str) and error:
        return error[:300]
    return body.strip()[:300] or "no details"


def yes_no_logodds(reply: dict[str, Any], url: str = "the endpoint") -> float:
    """log P(yes) - log P(no) from an OpenAI chat completion with `top_logprobs` on its first token."""
    try:
        top = reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        listed = [(str(t["token"]).strip().lower(), float(t["logprob"])) for t in top]
    except (KeyError, IndexError, TypeError, ValueError):
        raise EndpointError(f"{url} returned no top_logprobs, which judging needs (serve a model with logprobs "
                            "enabled, or leave min_answerable unset)") from None
    if not listed:
        raise EndpointError(f"{url} returned an empty top_logprobs list")
    floor = min(lp for _, lp in listed)

    def mass(word: str) -> float:
        found = [lp for token, lp in listed if token == word]
        return math.log(sum(math.exp(lp) for lp in found)) if found else floor

    return mass("yes") - mass("no")


def _sse_content(lines: Iterator[str], url: str = "the endpoint") -> Iterator[str]:
    """The text pieces of an OpenAI chat-completion SSE stream. The stream must end with `data: [DONE]` or a
    `finish_reason`; one that just stops was cut off, and is an error rather than a silently short answer."""
    finished = False
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError:
            raise EndpointError(f"{url} sent a stream event that is not JSON: {data[:200]!r}") from None
        if not isinstance(event, dict):
            raise EndpointError(f"{url} sent a stream event that is not an object: {data[:200]!r}")
        if event.get("error"):
            raise EndpointError(f"{url} reported an error mid-answer: {_error_detail(json.dumps(event))}")
        for choice in event.get("choices") or ():
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                yield piece
            finished = finished or bool(choice.get("finish_reason"))
    if not finished:
        raise EndpointError(f"{url} ended the stream before the reply was complete (no [DONE]): the answer "
                            "was cut off; try again")
