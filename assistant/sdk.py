"""The Python SDK: three lines to a cited answer.

    from assistant import Citeline
    kb = Citeline("my-kb").ingest("docs/")
    print(kb.ask("What is the battery life?").text)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

from assistant.answer import Answerer, AnswerStream
from assistant.chat import ChatSession
from assistant.config import Settings, build_answerer, build_generator, build_searcher
from assistant.types import Answer, PageImage
from retrieval.attachments import parent_of, parents
from retrieval.catalog import DocumentRow
from retrieval.doc_citations import office_citations
from retrieval.kb import KnowledgeBase, default_assets_dir
from retrieval.kb_writer import IngestReport, KBWriter, ProgressFn
from retrieval.rewrite import Turn
from retrieval.search import Level, Searcher
from retrieval.settings import KBSettings, default_model_factory
from retrieval.store import kb_location, masked
from retrieval.types import Hit, ParentLink, SearchFilters

if TYPE_CHECKING:
    from langchain_core.retrievers import BaseRetriever
    from typing_extensions import Unpack

    from assistant.charts import Chart
    from assistant.generators import Generator

ModelFactory = Callable[[str, str], object]  # (role, spec) -> an embedder or tagger (retrieval.settings)


class AnswerOptions(TypedDict, total=False):
    """Per-call overrides of AnswerSettings, Sampling and VerifySettings fields (None: as configured)."""

    top_k: int | None  # hits retrieved (the sampling top-k is `sample_top_k`)
    context_tokens: int | None
    source_tokens: int | None
    max_sources: int | None
    min_confidence: float | None
    min_answerable: float | None
    insist: bool | None
    closest_sources: int | None
    images: int | None
    history_turns: int | None
    system_prompt: str | None
    temperature: float | None
    top_p: float | None
    sample_top_k: int | None
    max_tokens: int | None
    seed: int | None
    stop: tuple[str, ...] | None
    entailment: str | None
    coverage: float | None
    semantic: float | None
    mode: Literal["drop", "flag"] | None
    infer_missing: bool | None


class Citeline:
    def __init__(self, kb_dir: str | os.PathLike[str] | None = None, *, settings: Settings | None = None,
                 text_model: str | None = None, image_model: str | None = None,
                 model_factory: ModelFactory | None = None) -> None:
        base = settings or Settings.from_env(kb_dir)
        kb_settings = KBSettings(**{**base.kb.__dict__, "text_model": text_model or base.kb.text_model,
                                    "image_model": image_model or base.kb.image_model})
        self.settings = replace(base, kb_dir=kb_location(kb_dir) if kb_dir else base.kb_dir, kb=kb_settings)
        self._factory = _memoize(model_factory or default_model_factory)  # models shared by reader and writer
        self._reader: KnowledgeBase | None = None
        self._searcher: Searcher | None = None
        self._generators: dict[str, Generator] = {}
        self._answerers: dict[int, Answerer] = {}  # per generator object, built once (dropped when the view reopens)
        self.last_report: IngestReport | None = None

    @property
    def kb_dir(self) -> Path | str:
        """The KB folder, or its postgresql:// DSN (a str, never a Path)."""
        return self.settings.kb_dir

    @property
    def location(self) -> str:
        """Where the KB lives, to show: the folder, or the DSN with its password masked."""
        return masked(self.kb_dir)

    @property
    def files_dir(self) -> Path:
        """A local folder for files kept beside the KB (uploads): the KB folder, or for a server KB the folder
        holding its assets (known before the KB exists: an upload may be what creates it)."""
        if isinstance(self.kb_dir, Path):
            return self.kb_dir
        return (self._reader.assets_dir if self._reader is not None else default_assets_dir(self.kb_dir)).parent

    def sibling(self) -> Citeline:
        """Another SDK object over the same KB with the same settings and models (e.g. a writer beside readers:
        its refresh never closes this one's view)."""
        return Citeline(self.kb_dir, settings=self.settings, model_factory=self._factory)

    # -- writing ----------------------------------------------------------------------------------------
    def ingest(self, *paths: str | os.PathLike[str], passwords: Sequence[str] = (), prune: bool = False,
               progress: ProgressFn | None = None, engine: str | Any = None) -> Citeline:
        """Ingest files or folders (incremental: unchanged files are skipped). Returns self for chaining;
        the per-file outcome is in `last_report`. `engine`: where files are parsed and embedded — None or
        "local" (here), "ray://HOST:PORT" (a Ray cluster; `pip install 'citeline[ray]'`), or an engine object."""
        from retrieval.ingest_engine import build_engine

        runner = build_engine(engine) if engine is None or isinstance(engine, str) else engine
        with self._open_writer() as kb:
            writer = KBWriter(kb, passwords, progress, engine=runner)
            self.last_report = writer.run([str(p) for p in paths], prune=prune)
        self._refresh()
        return self

    def remove(self, *paths: str | os.PathLike[str]) -> list[str]:
        with self._open_writer() as kb:
            removed = kb.remove([str(p) for p in paths])
        self._refresh()
        return removed

    def reindex(self) -> dict[str, int]:
        with KnowledgeBase.open(self.kb_dir, self.settings.kb, writable=True, factory=self._factory,
                                check_manifest=False) as kb:
            counts = kb.reindex()
        self._refresh()
        return counts

    # -- reading ----------------------------------------------------------------------------------------
    @property
    def kb(self) -> KnowledgeBase:
        """A read-only view of the KB (usable while another process ingests)."""
        if self._reader is None:
            self._reader = KnowledgeBase.open(self.kb_dir, self.settings.kb, factory=self._factory)
        return self._reader

    def status(self) -> dict[str, Any]:
        """The KB's counts, indexes and failed files, and how precisely each Office document is cited."""
        return {**self.kb.status(), "office": [c.to_json() for c in office_citations(self.kb.store)]}

    def documents(self) -> list[DocumentRow]:
        return self.kb.store.documents()

    def attached_to(self, doc_id: str) -> ParentLink | None:
        """The document `doc_id` is attached to (a mail attachment's message), or None."""
        return parent_of(self.kb.store, doc_id)

    def attachment_links(self, doc_ids: Sequence[str]) -> dict[str, ParentLink]:
        """For each of `doc_ids` that is an attachment: the document it is attached to."""
        return parents(self.kb.store, doc_ids)

    def page_image(self, doc_id: str, page: int) -> PageImage | None:
        """A cited page's thumbnail and size (to scale a bbox onto the thumbnail), and its source file."""
        row = self.kb.store.page(doc_id, page)
        if row is None:
            return None
        thumbnail = self.asset(row["thumbnail"])
        source = Path(row["path"]) if row["path"] and Path(row["path"]).is_file() else None
        return PageImage(doc_id, page, float(row["width"] or 0), float(row["height"] or 0), thumbnail, source)

    def asset(self, relative: str | None) -> Path | None:
        """A page thumbnail or figure crop by its KB-relative path (None if missing or outside the assets)."""
        if not relative:
            return None
        root = self.kb.assets_dir.resolve()
        path = (root / relative).resolve()
        return path if path.is_relative_to(root) and path.is_file() else None

    # -- searching --------------------------------------------------------------------------------------
    def search(self, query: str | None = None, *, image: str | None = None, top_k: int = 10,
               filters: SearchFilters | None = None, docs: Sequence[str] = (),
               retrievers: Sequence[str] | None = None, weights: Mapping[str, float] | None = None,
               rescore: bool = False, mmr: float | None = None, level: Level = "chunk",
               history: Sequence[Turn] = ()) -> list[Hit]:
        """Hybrid search (dense + BM25 + figure descriptions + image space, fused by weighted RRF): a list of
        `retrieval.types.Hit`, each saying which retrievers found it and at what rank. `image` is a query
        image file; `level="page"` ranks whole pages; `rescore=True` re-scores with all-mpnet-base-v2."""
        if docs:
            filters = replace(filters or SearchFilters(), docs=tuple(docs))
        searcher = self.searcher
        if rescore and searcher.rescorer is None:
            from retrieval.rescore import EmbeddingRescorer

            searcher.rescorer = EmbeddingRescorer(self._factory("text", "mpnet"))
        return searcher.search(query, image=image, top_k=top_k, filters=filters, retrievers=retrievers,
                               weights=weights, rescore=rescore, mmr=mmr, level=level, history=history)

    @property
    def searcher(self) -> Searcher:
        """The `retrieval.search.Searcher` over the read-only KB view (rebuilt when the view is reopened)."""
        if self._searcher is None or self._searcher.kb is not self.kb:
            self._searcher = build_searcher(self.settings, self.kb)
            self._answerers.clear()  # they search through the old view
        return self._searcher

    def as_langchain_retriever(self, *, top_k: int = 10, filters: SearchFilters | None = None,
                               level: Level = "chunk", rescore: bool = False, mmr: float | None = None,
                               weights: Mapping[str, float] | None = None,
                               retrievers: Sequence[str] | None = None) -> BaseRetriever:
        """A LangChain `BaseRetriever` over this KB (Documents carry source, page, bbox and retriever ranks)."""
        from retrieval.langchain import as_langchain_retriever

        return as_langchain_retriever(self.searcher, top_k=top_k, filters=filters, level=level, rescore=rescore,
                                      mmr=mmr, weights=weights, retrievers=retrievers)

    # -- answering --------------------------------------------------------------------------------------
    @overload
    def ask(self, question: str, *, model: str | None = ..., stream: Literal[False] = ...,
            history: Sequence[Turn] = ..., filters: SearchFilters | None = ..., generator: Generator | None = ...,
            image: str | None = ..., **options: Unpack[AnswerOptions]) -> Answer: ...

    @overload
    def ask(self, question: str, *, model: str | None = ..., stream: Literal[True],
            history: Sequence[Turn] = ..., filters: SearchFilters | None = ..., generator: Generator | None = ...,
            image: str | None = ..., **options: Unpack[AnswerOptions]) -> AnswerStream: ...

    def ask(self, question: str, *, model: str | None = None, stream: bool = False, history: Sequence[Turn] = (),
            filters: SearchFilters | None = None, generator: Generator | None = None, image: str | None = None,
            **options: Unpack[AnswerOptions]) -> Answer | AnswerStream:
        """A cited, verified answer (`Answer`), or with `stream=True` an `AnswerStream` of tokens whose
        `.answer` is set at the end. `options` override AnswerSettings, Sampling and VerifySettings fields
        (`AnswerOptions`: top_k, temperature, max_tokens, seed, system_prompt, coverage, entailment, mode, ...).
        `image`: a query image file searched together with the question (a question about a picture)."""
        answerer = self.answerer(model=model, generator=generator)
        settings = self.settings.answer.with_options(**options)
        if stream:
            return answerer.stream(question, history, filters, image=image, settings=settings)
        return answerer.ask(question, history, filters, image=image, settings=settings)

    def chat(self, *, model: str | None = None, filters: SearchFilters | None = None,
             generator: Generator | None = None, **options: Unpack[AnswerOptions]) -> ChatSession:
        """A multi-turn `ChatSession` (`.ask(q, image=None)`, `.stream(q, image=None)`, `.history`)."""
        settings = self.settings.answer.with_options(**options)
        return ChatSession(self.answerer(model=model, generator=generator), filters, settings=settings)

    def chart(self, question: str, *, filters: SearchFilters | None = None, docs: Sequence[str] = (),
              **settings: int) -> Chart:
        """A cited chart (`assistant.charts.Chart`) of numbers read from the KB's tables: every point cites its
        document, page, table bbox, row and column and was found again in that cell; `chart.save("out.png")`
        (.png/.svg/.json), `chart.spec` (Vega-Lite). When no table holds the data, `chart.refused` is True and
        `chart.closest` lists the closest tables. `settings` override `ChartSettings` (top_k, width, height)."""
        from assistant.charts import ChartMaker

        if docs:
            filters = replace(filters or SearchFilters(), docs=tuple(docs))
        chart_settings = replace(self.settings.chart, **settings)
        return ChartMaker(self.kb, self.searcher.search, chart_settings).chart(question, filters)

    def answerer(self, *, model: str | None = None, generator: Generator | None = None, image: str | None = None,
                 **options: Unpack[AnswerOptions]) -> Answerer:
        """The answering pipeline for a model spec (default: the configured model) or a generator, built once;
        with `image` or `options`, a view of it with those defaults (sharing its generator and verifiers)."""
        generator = generator or self.generator(model)
        searcher = self.searcher  # first: a reopened view drops the answerers that search the old one
        answerer = self._answerers.get(id(generator))
        if answerer is None or answerer.generator is not generator:
            answerer = self._answerers[id(generator)] = build_answerer(self.settings, searcher, generator)
        if image is None and not options:
            return answerer
        return answerer.configured(self.settings.answer.with_options(**options), query_image=image)

    def generator(self, model: str | None = None) -> Generator:
        """The generator for a model spec (default: the configured model), built once per SDK object."""
        spec = model or self.settings.model
        if spec not in self._generators:
            self._generators[spec] = build_generator(self.settings, spec)
        return self._generators[spec]

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> Citeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_writer(self) -> KnowledgeBase:
        return KnowledgeBase.open(self.kb_dir, self.settings.kb, writable=True, factory=self._factory)

    def _refresh(self) -> None:
        self.close()


def _memoize(factory: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
    built: dict[tuple[str, str], Any] = {}

    def get(role: str, spec: str) -> Any:
        if (role, spec) not in built:
            built[(role, spec)] = factory(role, spec)
        return built[(role, spec)]

    return get
