"""Generators: one tiny streaming protocol, several backends, one wiring function.

    build_generator("qwen")                          offline default: Qwen2.5-Coder-0.5B-Instruct GGUF (llama.cpp)
    build_generator("smollm2")                       SmolLM2-135M-Instruct GGUF, fast and weak (tests)
    build_generator("gguf:/path/model.gguf")         any GGUF file
    build_generator("vlm:HuggingFaceTB/SmolVLM-256M-Instruct")   a vision-language model via transformers
    build_generator("openai:gpt-4o-mini@https://api.openai.com/v1")   any OpenAI-compatible endpoint
    build_generator("extractive")                    no model: the best supporting sentences, always faithful
    build_generator("fake")                          scripted, for tests

Nothing here falls back to a hosted API: an endpoint is used only when the spec names it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from assistant.errors import UnknownGenerator
from assistant.types import Message, Sampling

GENERATOR_SPECS = ("qwen", "smollm2", "gguf:PATH", "vlm:HUB_ID_OR_PATH", "openai:MODEL@BASE_URL", "extractive", "fake")


@dataclass(frozen=True)
class Budget:
    """How much source text a generator is shown: a declared profile per backend, overridable per call
    (AnswerSettings.context_tokens / source_tokens / max_sources)."""

    context_tokens: int
    source_tokens: int
    max_sources: int


# the offline 0.5B on 2 CPU cores reads ~190 prompt tokens/s: a small budget keeps the first token under 2 s
SMALL_BUDGET = Budget(context_tokens=300, source_tokens=120, max_sources=4)
# endpoints and VLMs have long contexts and fast prompt processing: thousands of tokens of evidence
LARGE_BUDGET = Budget(context_tokens=6000, source_tokens=800, max_sources=10)


def budget_of(generator: Any) -> Budget:
    """A generator's declared `budget`, or the small profile for one that declares none."""
    budget = getattr(generator, "budget", None)
    return budget if isinstance(budget, Budget) else SMALL_BUDGET


@runtime_checkable
class Generator(Protocol):
    name: str
    supports_images: bool  # True when `images` (file paths) reach the model as pixels
    cites_reliably: bool  # False: the model gets the plain prompt and the verifier attributes its sentences

    def stream(self, messages: Sequence[Message], images: Sequence[str] = (),
               sampling: Sampling | None = None) -> Iterator[str]:
        """Yield the reply's text pieces as they are produced. Closing the iterator cancels generation."""
        ...


@runtime_checkable
class Judge(Protocol):
    """An optional second face of a generator: how strongly the model would reply "Yes" rather than "No"."""

    def yes_no(self, messages: Sequence[Message]) -> float:
        """The log-odds of "Yes" over "No" as the first word of the reply to `messages`."""
        ...


def generate(generator: Generator, messages: Sequence[Message], images: Sequence[str] = (),
             sampling: Sampling | None = None) -> str:
    """The whole reply at once."""
    return "".join(generator.stream(messages, images, sampling))


def build_generator(spec: str = "qwen", *, env: Mapping[str, str] | None = None, **options: Any) -> Generator:
    """Turn a model spec into a generator. `options` go to the backend's constructor (n_ctx, n_threads, ...)."""
    env = os.environ if env is None else env
    if spec in ("qwen", "smollm2") or spec.startswith("gguf:"):
        from assistant.chat_models import resolve_gguf
        from assistant.generators.llama import LlamaGenerator

        path = resolve_gguf(spec[5:] if spec.startswith("gguf:") else spec)
        return LlamaGenerator(str(path), name=spec, **options)
    if spec.startswith("vlm:"):
        from assistant.generators.vlm import VLMGenerator

        return VLMGenerator(spec[4:], **options)
    if spec.startswith("openai:"):
        from assistant.generators.openai_compat import OpenAICompatGenerator, parse_openai_spec

        model, base_url = parse_openai_spec(spec)
        key = options.pop("api_key", None) or env.get("CITELINE_API_KEY") or env.get("OPENAI_API_KEY")
        if env.get("CITELINE_API_TIMEOUT"):  # seconds to wait for the endpoint (default 120)
            options.setdefault("timeout", env["CITELINE_API_TIMEOUT"])
        return OpenAICompatGenerator(model, base_url, api_key=key, **options)
    if spec == "extractive":
        from assistant.generators.extractive import ExtractiveGenerator

        return ExtractiveGenerator(**options)
    if spec == "fake" or spec.startswith("fake:"):
        from assistant.generators.fake import ScriptedGenerator

        return ScriptedGenerator(options.pop("script", spec[5:] or "I could not find this in your documents."),
                                 **options)
    raise UnknownGenerator(spec, GENERATOR_SPECS)


__all__ = ["GENERATOR_SPECS", "LARGE_BUDGET", "SMALL_BUDGET", "Budget", "CannotJudge", "Generator", "Judge", "UnknownGenerator", "budget_of", "build_generator", "generate"]
