"""Citeline: answers over your own documents, with every claim cited and checked.

    from assistant import Citeline
    kb = Citeline(".citeline/quickstart").ingest("samples/demo")
    print(kb.ask("What is the battery life of the Aurora X2?").text)

The public API is the list below. Each name is imported on first use, so `import assistant.errors` or the
command line's start does not load the SDK and what it imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistant.answer import Answerer, AnswerSettings, AnswerStream
    from assistant.charts import Chart, ChartSettings
    from assistant.chat import ChatSession
    from assistant.citations import VerifySettings
    from assistant.config import Settings
    from assistant.errors import CitelineError
    from assistant.generators import Generator, build_generator
    from assistant.sdk import AnswerOptions, Citeline
    from assistant.types import Answer, Citation, PageImage, Sampling, Source, StreamEvent
    from retrieval.search import SearchSettings
    from retrieval.settings import KBSettings
    from retrieval.types import Hit, SearchFilters

_HOMES = {
    "Citeline": "assistant.sdk", "AnswerOptions": "assistant.sdk",
    "Settings": "assistant.config", "KBSettings": "retrieval.settings", "SearchSettings": "retrieval.search",
    "AnswerSettings": "assistant.answer", "Sampling": "assistant.types", "VerifySettings": "assistant.citations",
    "ChartSettings": "assistant.charts",
    "Answer": "assistant.types", "Citation": "assistant.types", "Source": "assistant.types",
    "StreamEvent": "assistant.types", "PageImage": "assistant.types", "AnswerStream": "assistant.answer",
    "Answerer": "assistant.answer", "ChatSession": "assistant.chat", "Chart": "assistant.charts",
    "Hit": "retrieval.types", "SearchFilters": "retrieval.types",
    "Generator": "assistant.generators", "build_generator": "assistant.generators",
    "CitelineError": "assistant.errors",
}

__all__ = [
    "Answer", "AnswerOptions", "AnswerSettings", "AnswerStream", "Answerer", "Chart", "ChartSettings", "ChatSession",
    "Citation", "Citeline", "CitelineError", "Generator", "Hit", "KBSettings", "PageImage", "Sampling",
    "SearchFilters", "SearchSettings", "Settings", "Source", "StreamEvent", "VerifySettings", "build_generator",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'assistant' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
