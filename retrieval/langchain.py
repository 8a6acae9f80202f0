"""LangChain interop at the edge: our Searcher as a LangChain `BaseRetriever` (langchain-core imported lazily).

Documents carry `source` (document name), `doc_id`, `page`, `bbox`, `kind`, `score`, `retrievers` ({name: rank}),
`chunk_id` and `figure_path` in their metadata. Nothing below this module knows LangChain exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ingest.errors import MissingDependency
from retrieval.types import Hit, SearchFilters

if TYPE_CHECKING:
    from retrieval.search import Searcher


def hit_to_document(hit: Hit) -> Any:
    from langchain_core.documents import Document

    meta = {"source": hit.doc_name, "doc_id": hit.doc_id, "page": hit.page,
            "bbox": hit.bbox.as_list() if hit.bbox else None, "kind": hit.kind, "score": float(hit.score),
            "retrievers": dict(hit.retrievers), "chunk_id": hit.id, "figure_path": hit.figure_path,
            "section": hit.section}
    return Document(page_content=hit.text, metadata=meta)


def as_langchain_retriever(searcher: Searcher, *, top_k: int = 10, filters: SearchFilters | None = None,
                           level: str = "chunk", rescore: bool = False, mmr: float | None = None,
                           weights: Mapping[str, float] | None = None,
                           retrievers: Sequence[str] | None = None) -> Any:
    """A `langchain_core.retrievers.BaseRetriever` whose `invoke(query)` runs `searcher.search(query, ...)`."""
    try:
        from langchain_core.callbacks import CallbackManagerForRetrieverRun
        from langchain_core.retrievers import BaseRetriever
        from pydantic import ConfigDict
    except ImportError as e:
        raise MissingDependency("langchain-core", "pip install langchain-core") from e

    class CitelineRetriever(BaseRetriever):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        searcher: Any
        search_kwargs: dict[str, Any]

        def _get_relevant_documents(self, query: str, *,
                                    run_manager: CallbackManagerForRetrieverRun) -> list[Any]:
            return [hit_to_document(h) for h in self.searcher.search(query, **self.search_kwargs)]

    kwargs: dict[str, Any] = {"top_k": top_k, "filters": filters, "level": level, "rescore": rescore, "mmr": mmr,
                              "weights": dict(weights) if weights else None,
                              "retrievers": tuple(retrievers) if retrievers else None}
    return CitelineRetriever(searcher=searcher, search_kwargs=kwargs)
