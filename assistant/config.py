"""The typed configuration, read at the edges (CLI, UI, server) and turned into objects in one place.

`Settings` composes every stage's settings: the KB's (`KBSettings`: embedders, chunker, parser-process limits,
parse options), search's (`SearchSettings`), the answer's (`AnswerSettings`: sampling, verification) and the
charts' (`ChartSettings`), plus the generator spec and how endpoints are reached. `Settings.from_env()` is the
one place the environment is read; the `build_*` functions below are the one place settings become objects
(the SDK, `assistant.sdk.Citeline`, calls them and keeps what they build).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.answer import Answerer, AnswerSettings, SearchFn
from assistant.charts.build import ChartSettings
from retrieval.kb import KnowledgeBase, default_kb_dir
from retrieval.search import Searcher, SearchSettings
from retrieval.settings import KBSettings
from retrieval.store import kb_location
from retrieval.types import Hit, SearchFilters

if TYPE_CHECKING:
    from collections.abc import Sequence

    from assistant.generators import Generator

HOME_ENV = "CITELINE_HOME"  # the default KB folder is $CITELINE_HOME/kb
MODEL_ENV = "CITELINE_MODEL"  # the default generator spec
SERVER_KEY_ENV = "CITELINE_SERVER_KEY"  # `citeline serve`'s bearer key
ENDPOINT_ENV = ("CITELINE_API_KEY", "OPENAI_API_KEY", "CITELINE_API_TIMEOUT")  # `openai:MODEL@URL` generators


@dataclass(frozen=True)
class Settings:
    kb_dir: Path | str = field(default_factory=default_kb_dir)  # a folder, or a postgresql:// DSN (kept a str)
    kb: KBSettings = field(default_factory=KBSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    model: str = "qwen"  # the generator spec (assistant.generators.build_generator); CITELINE_MODEL
    answer: AnswerSettings = field(default_factory=AnswerSettings)  # sampling, system prompt, verification
    chart: ChartSettings = field(default_factory=ChartSettings)
    # what `openai:` generators read (CITELINE_API_KEY / OPENAI_API_KEY, CITELINE_API_TIMEOUT); None: the
    # process environment, read when such a generator is built
    endpoint_env: Mapping[str, str] | None = None
    server_key: str | None = None  # CITELINE_SERVER_KEY: `citeline serve` requires it off loopback

    @classmethod
    def from_env(cls, kb_dir: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
                 **kb_overrides: object) -> Settings:
        """CITELINE_HOME picks the default KB folder, CITELINE_MODEL the default model; explicit arguments win."""
        env = os.environ if env is None else env
        base = cls()
        kb = replace(base.kb, **{k: v for k, v in kb_overrides.items() if v is not None})  # type: ignore[arg-type]
        home = env.get(HOME_ENV)
        default_dir = Path(home).expanduser() / "kb" if home else base.kb_dir
        return replace(base, kb_dir=kb_location(kb_dir) if kb_dir else default_dir, kb=kb,
                       model=env.get(MODEL_ENV) or base.model, server_key=env.get(SERVER_KEY_ENV) or None,
                       endpoint_env={k: env[k] for k in ENDPOINT_ENV if env.get(k)})


# -- settings → objects ---------------------------------------------------------------------------------------
def build_generator(settings: Settings, spec: str | None = None) -> Generator:
    """The generator for `spec` (default: the configured model), reaching endpoints as configured."""
    from assistant.generators import build_generator as build

    return build(spec or settings.model, env=settings.endpoint_env)


def build_searcher(settings: Settings, kb: KnowledgeBase) -> Searcher:
    return Searcher(kb, settings.search)


def build_answerer(settings: Settings, searcher: Searcher, generator: Generator) -> Answerer:
    """An answerer searching through `searcher` (the retrieval stage itself), with the KB's text embedder and
    figure crops."""
    return Answerer(_search_fn(searcher), generator, embedder=searcher.kb.models.text, settings=settings.answer,
                    assets_dir=searcher.kb.assets_dir)


def _search_fn(searcher: Searcher) -> SearchFn:
    """The answerer's search: the retrieval stage's Searcher itself (not back up through the SDK)."""

    def search(query: str, top_k: int, filters: SearchFilters | None, /, *,
               image: str | None = None) -> Sequence[Hit]:
        if image is not None:
            return searcher.search(query, image=image, top_k=top_k, filters=filters)
        return searcher.search(query, top_k=top_k, filters=filters)

    return search
