"""Generators: one tiny streaming protocol, several backends, one wiring function.

    build_generator("qwen")                          offline default: Qwen2.5-Coder-0.5B-Instruct GGUF (llama.cpp)
    build_generator("qwen-1.5b")                     Qwen2.5-Coder-1.5B-Instruct GGUF: better, ~3x slower prompts
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
from collections.abc import Mapping
from typing import Any

from assistant.errors import CannotJudge, UnknownGenerator
from assistant.generators.base import (
    LARGE_BUDGET,
    SMALL_BUDGET,
    Budget,
    Generator,
    Judge,
    budget_of,
    generate,
)

GENERATOR_SPECS = ("qwen", "qwen-1.5b", "smollm2", "gguf:PATH", "vlm:HUB_ID_OR_PATH", "openai:MODEL@BASE_URL",
                   "extractive", "fake")


def build_generator(spec: str = "qwen", *, env: Mapping[str, str] | None = None, **options: Any) -> Generator:
    """Turn a model spec into a generator. `options` go to the backend's constructor (n_ctx, n_threads, ...)."""
    env = os.environ if env is None else env
    if spec in ("qwen", "qwen-1.5b", "smollm2") or spec.startswith("gguf:"):
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


__all__ = ["GENERATOR_SPECS", "LARGE_BUDGET", "SMALL_BUDGET", "Budget", "CannotJudge", "Generator", "Judge",
           "UnknownGenerator", "budget_of", "build_generator", "generate"]
