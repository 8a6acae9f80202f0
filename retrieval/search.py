"""The search stage: several retrievers, fused by weighted RRF, optionally re-scored, diversified, per page.

Retrievers (the names `Hit.retrievers` reports, with the 1-based rank each gave):
    dense      text embedder over every chunk (passages, tables, figure descriptions)
    bm25       full-text ranking over chunk text and section (local: FTS5 BM25, porter stemming; postgres:
               tsvector 'english' + ts_rank; stop words removed here or there)
    figures    text embedder over figure-description chunks only, so figures are not drowned by text
    image      the image space: CLIP text→image when the image model has a text tower; query by image with
               CLIP or the offline tagger's features
    page_bm25  the same over whole-page text (page level only)

Every ranking comes from the KB's store (`retrieval.store`), so fusion is the same whatever the backend.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ingest.chunking import embedding_text
from ingest.errors import CorruptFile
from retrieval.attachments import with_parents
from retrieval.errors import SearchError
from retrieval.fusion import Fused, mmr, rrf, to_pages
from retrieval.kb import KnowledgeBase
from retrieval.rescore import Rescorer
from retrieval.rewrite import FollowUpRewriter, QueryRewriter, Turn
from retrieval.settings import IMAGE, TEXT
from retrieval.store.protocol import StoredChunk
from retrieval.types import Hit, SearchFilters

Level = Literal["chunk", "page"]
RETRIEVERS = ("dense", "bm25", "figures", "image", "page_bm25")
DEFAULT_WEIGHTS: Mapping[str, float] = {"dense": 1.0, "bm25": 1.0, "figures": 0.5, "image": 0.5,
                                        "page_bm25": 1.0, "rescore": 1.0}
# Ranking pages, the figure-description ranking maps to "any page with a figure" and mostly adds noise
# (MMLongBench-dev: 0.62 → 0.55 nDCG@10 at weight 0.5), so it only breaks ties there.
PAGE_WEIGHTS: Mapping[str, float] = {**DEFAULT_WEIGHTS, "figures": 0.1}


@dataclass(frozen=True)
class SearchSettings:
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    page_weights: Mapping[str, float] = field(default_factory=lambda: dict(PAGE_WEIGHTS))  # level="page"
    rrf_k: int = 60
    depth: int = 100  # candidates each retriever contributes to fusion
    rescore_depth: int = 30  # how many fused candidates the re-scorer looks at
    mmr_pool: int = 50  # how many fused candidates MMR chooses from


@dataclass
class _Query:
    text: str | None
    image: str | None
    filters: SearchFilters | None
    depth: int


def _check_query_image(path: str) -> None:
    """A query image must exist and be a picture Pillow can read: a clear error, not a decoder traceback."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"query image {path}: no such file")
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as exc:  # UnidentifiedImageError, truncated data, decompression-bomb errors
        raise CorruptFile(f"query image {path} is not a readable image (PNG, JPEG, WebP, ...): {exc}") from exc


class Searcher:
    def __init__(self, kb: KnowledgeBase, settings: SearchSettings | None = None, *,
                 rescorer: Rescorer | None = None, rewriter: QueryRewriter | None = None) -> None:
        self.kb = kb
        self.settings = settings or SearchSettings()
        self.rescorer = rescorer
        self.rewriter = rewriter or FollowUpRewriter()
        self.store = kb.store

    # -- the one entry point ------------------------------------------------------------------------------
    def search(self, query: str | None = None, *, image: str | None = None, top_k: int = 10,
               filters: SearchFilters | None = None, retrievers: Sequence[str] | None = None,
               weights: Mapping[str, float] | None = None, rescore: bool = False, mmr: float | None = None,
               level: Level = "chunk", history: Sequence[Turn] = ()) -> list[Hit]:
        names = self._check(query, image, retrievers, level, rescore)
        text = self.rewriter.rewrite(query, history) if query and history else query
        if image is not None:
            _check_query_image(image)
        q = _Query(text, image, filters, max(self.settings.depth, top_k))
        if q.text is None and image is not None:
            q.text = self._image_tags(image)  # query by image also searches figure descriptions
        rankings = self._rankings(q, names, level)
        base = self.settings.page_weights if level == "page" else self.settings.weights
        w = {**base, **(weights or {})}
        if level == "page":
            return with_parents(self.kb.store, self._page_hits(rankings, w, q, top_k, rescore))
        fused = rrf(rankings, w, self.settings.rrf_k)
        if rescore and q.text:
            fused = self._rescored(fused, rankings, w, q.text)
        if mmr is not None:
            fused = self._diversified(fused, mmr, top_k)
        return with_parents(self.kb.store, self._chunk_hits(fused[:top_k]))

    def _check(self, query: str | None, image: str | None, retrievers: Sequence[str] | None, level: str,
               rescore: bool) -> tuple[str, ...]:
        if not (query and query.strip()) and image is None:
            raise SearchError("nothing to search for: give a text query, an image (--image FILE), or both")
        if level not in ("chunk", "page"):
            raise SearchError(f"unknown level {level!r}; choose 'chunk' or 'page'")
        names = tuple(retrievers) if retrievers else RETRIEVERS
        unknown = [n for n in names if n not in RETRIEVERS]
        if unknown:
            raise SearchError(f"unknown retriever(s) {', '.join(unknown)}; choose from {', '.join(RETRIEVERS)}")
        if rescore and self.rescorer is None:
            raise SearchError("rescore=True needs a re-scorer: Searcher(kb, rescorer=build_rescorer('mpnet'))")
        return names

    # -- retrievers --------------------------------------------------------------------------------------
    def _rankings(self, q: _Query, names: Sequence[str], level: Level) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for name in names:
            if name == "page_bm25" and level != "page":
                continue
            ranking = getattr(self, f"_run_{name}")(q)
            if ranking:
                out[name] = ranking
        return out

    def _run_dense(self, q: _Query) -> list[int]:
        if not q.text:
            return []
        return self.store.vector_search(TEXT, self._embed_text(q.text), q.depth, q.filters)

    def _run_bm25(self, q: _Query) -> list[int]:
        return [i for i, _ in self.store.lexical_search(q.text, q.depth, q.filters)] if q.text else []

    def _run_figures(self, q: _Query) -> list[int]:
        if not q.text:
            return []
        return self.store.vector_search(TEXT, self._embed_text(q.text), q.depth, q.filters, kinds=("figure",))

    def _run_image(self, q: _Query) -> list[int]:
        model = self.kb.models.image if IMAGE in self.kb.spaces() else None
        if model is None:
            return []
        if q.image is not None:
            vector = model.embed_images([q.image])
        elif q.text and getattr(model, "supports_text_queries", False):
            vector = model.embed_texts([q.text])
        else:
            return []
        return self.store.vector_search(IMAGE, np.asarray(vector, dtype=np.float32), q.depth, q.filters)

    def _run_page_bm25(self, q: _Query) -> list[tuple[str, int]]:
        return [(d, p) for d, p, _ in self.store.lexical_pages(q.text, q.depth, q.filters)] if q.text else []

    def _embed_text(self, text: str) -> np.ndarray:
        cached = getattr(self, "_last_embedding", None)
        if cached is not None and cached[0] == text:
            return cached[1]
        vector = np.asarray(self.kb.models.text.embed([text]), dtype=np.float32)
        self._last_embedding = (text, vector)
        return vector

    def _image_tags(self, image: str) -> str | None:
        tagger = self.kb.models.tagger
        if tagger is None:
            return None
        tags = tagger.tag([image])[0]
        return ", ".join(label for label, p in tags if p >= 0.05) or None

    # -- re-scoring and diversity ------------------------------------------------------------------------
    def _rescored(self, fused: list[Fused[int]], rankings: dict[str, list[Any]], weights: Mapping[str, float],
                  query: str) -> list[Fused[int]]:
        """The re-scorer's order over the fused top candidates joins the fusion as one more ranking."""
        assert self.rescorer is not None
        top = [f.key for f in fused[: self.settings.rescore_depth]]
        stored = self.store.get_chunks(top)
        top = [i for i in top if i in stored]
        scores = self.rescorer.score(query, [embedding_text(stored[i].chunk) for i in top])
        order = [top[j] for j in np.argsort(-np.asarray(scores), kind="stable")]
        return rrf({**rankings, "rescore": order}, weights, self.settings.rrf_k)

    def _diversified(self, fused: list[Fused[int]], lambda_: float, top_k: int) -> list[Fused[int]]:
        pool = fused[: max(self.settings.mmr_pool, top_k)]
        info = self.kb.spaces().get(TEXT)
        if not pool or not info:
            return fused
        vectors = self.store.load_vectors(TEXT, [f.key for f in pool], int(info["dimension"]))
        chosen = mmr([f.score for f in pool], vectors, top_k, lambda_)
        return [pool[i] for i in chosen]

    # -- results -----------------------------------------------------------------------------------------
    def _chunk_hits(self, fused: list[Fused[int]]) -> list[Hit]:
        stored = self.store.get_chunks([f.key for f in fused])
        return [_hit(stored[f.key], f) for f in fused if f.key in stored]

    def _page_hits(self, rankings: dict[str, list[Any]], weights: Mapping[str, float], q: _Query, top_k: int,
                   rescore: bool) -> list[Hit]:
        """Each chunk retriever's ranking becomes a page ranking (a page ranks where its best chunk does)."""
        chunk_ids = {i for name, r in rankings.items() if name != "page_bm25" for i in r}
        stored = self.store.get_chunks(sorted(chunk_ids))
        page_of = {i: (s.chunk.doc_id, s.chunk.page) for i, s in stored.items()}
        page_rankings = {name: (r if name == "page_bm25" else to_pages(r, page_of)) for name, r in rankings.items()}
        fused = rrf(page_rankings, weights, self.settings.rrf_k)
        if rescore and q.text:
            fused = self._rescored_pages(fused, page_rankings, weights, q.text)
        chunk_fused = rrf({n: r for n, r in rankings.items() if n != "page_bm25"}, weights, self.settings.rrf_k)
        best_chunk: dict[tuple[str, int], int] = {}
        for f in chunk_fused:
            if f.key in page_of:
                best_chunk.setdefault(page_of[f.key], f.key)
        return [self._page_hit(f, best_chunk.get(f.key), stored) for f in fused[:top_k]]

    def _rescored_pages(self, fused: list[Fused[tuple[str, int]]], rankings: dict[str, list[Any]],
                        weights: Mapping[str, float], query: str) -> list[Fused[tuple[str, int]]]:
        """A page scores as its best chunk does (a page is longer than a re-scorer reads)."""
        assert self.rescorer is not None
        top = [f.key for f in fused[: self.settings.rescore_depth]]
        owners: list[int] = []
        texts: list[str] = []
        for n, (doc_id, page) in enumerate(top):
            ids = self.store.chunk_ids(doc_id, page)
            stored = self.store.get_chunks(ids)
            page_texts = ([embedding_text(stored[i].chunk) for i in ids if i in stored]
                          or [self._page_text(doc_id, page)])
            owners += [n] * len(page_texts)
            texts += page_texts
        best = np.full(len(top), -np.inf)
        for n, score in zip(owners, self.rescorer.score(query, texts), strict=True):
            best[n] = max(best[n], score)
        order = [top[j] for j in np.argsort(-best, kind="stable")]
        return rrf({**rankings, "rescore": order}, weights, self.settings.rrf_k)

    def _page_text(self, doc_id: str, page: int) -> str:
        return self.store.page_texts(doc_id, page).get(page, "")

    def _page_hit(self, f: Fused[tuple[str, int]], chunk_id: int | None, stored: dict[int, StoredChunk]) -> Hit:
        doc_id, page = f.key
        if chunk_id is None:
            ids = self.store.chunk_ids(doc_id, page)
            chunk_id = ids[0] if ids else 0
        row = self.store.page(doc_id, page) or {}
        best = stored.get(chunk_id)
        return Hit(id=chunk_id, doc_id=doc_id, doc_name=row.get("doc_name") or doc_id, page=page, kind="page",
                   text=row.get("text", ""), score=f.score, bbox=None, retrievers=dict(f.ranks),
                   section=row.get("section", ""), chunk=best.chunk if best else None,
                   meta={"best_chunk": chunk_id})


def _hit(s: StoredChunk, f: Fused[int]) -> Hit:
    c = s.chunk
    return Hit(id=s.id, doc_id=c.doc_id, doc_name=s.doc_name, page=c.page, kind=c.kind, text=c.text, score=f.score,
               bbox=c.bbox, retrievers=dict(f.ranks), figure_path=c.figure_path, section=c.section, chunk=c,
               meta=dict(s.meta))
