"""BM25 over the catalog's SQLite FTS5 tables (porter stemming; stop words removed here).

The FTS5 index lives in the catalog and is written in the same transaction as each document, so it is
persisted and updated incrementally with the KB. User text never reaches FTS5's query syntax: it is cut into
word tokens, stop words are dropped and each remaining term is quoted, then the terms are OR-ed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from retrieval.catalog import Catalog
from retrieval.types import SearchFilters

# The usual English stop-word list (as in scikit-learn / bm25s), trimmed to words that carry no topic.
_STOP_WORDS_TEXT = ("a about above after again against all also am an and any are aren't as at be because been "
                    """before being
    below between both but by can cannot could couldn't did didn't do does doesn't doing don't down during each
    few for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself
    him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most
    mustn't my myself no nor not of off on once only or other ought our ours ourselves out over own same shan't
    she she'd she'll she's should shouldn't so some such than that that's the their theirs them themselves then
    there there's these they they'd they'll they're they've this those through to too under until up very was
    wasn't we we'd we'll we're we've were weren't what what's when when's where where's which while who who's
    whom why why's with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves
    s t d ll m o re ve y""")
STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
MAX_TERMS = 64  # a pasted page as a query should not build a huge MATCH expression


def query_terms(text: str) -> list[str]:
    """Lower-cased word tokens without stop words, de-duplicated in order of first appearance."""
    seen: dict[str, None] = {}
    for token in _TOKEN.findall(text.lower()):
        if token not in STOP_WORDS and token not in seen:
            seen[token] = None
    return list(seen)[:MAX_TERMS]


def match_expression(text: str) -> str | None:
    """A safe FTS5 MATCH expression: every term quoted (so `AND`, `NEAR`, `*`, `"` and `:` are plain text)."""
    terms = query_terms(text)
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


@dataclass(frozen=True)
class FilterSQL:
    """A WHERE fragment over `chunks c JOIN documents d` and its parameters."""

    where: str
    params: tuple[object, ...]


def filter_sql(filters: SearchFilters | None, page_col: str = "c.page", kind_col: str | None = "c.kind",
               doc_col: str = "c.doc_id") -> FilterSQL:
    if filters is None:
        return FilterSQL("1", ())
    parts: list[str] = []
    params: list[object] = []
    if filters.docs:
        marks = ",".join("?" * len(filters.docs))
        parts.append(f"(d.name IN ({marks}) OR d.doc_id IN ({marks}))")
        params += [*filters.docs, *filters.docs]
    if filters.file_types:
        parts.append(f"d.kind IN ({','.join('?' * len(filters.file_types))})")
        params += list(filters.file_types)
    if filters.pages is not None:
        parts.append(f"{page_col} BETWEEN ? AND ?")
        params += [int(filters.pages[0]), int(filters.pages[1])]
    if filters.modalities and kind_col:
        parts.append(f"{kind_col} IN ({','.join('?' * len(filters.modalities))})")
        params += list(filters.modalities)
    if filters.path_glob:
        parts.append(f"EXISTS (SELECT 1 FROM files fl WHERE fl.doc_id = {doc_col} AND fl.status = 'ingested'"
                     " AND (fl.path GLOB ? OR d.name GLOB ?))")
        params += [filters.path_glob, filters.path_glob]
    return FilterSQL(" AND ".join(parts) or "1", tuple(params))


def is_empty(filters: SearchFilters | None) -> bool:
    return filters is None or filters == SearchFilters()


class LexicalIndex:
    """BM25 over chunks (`chunks_fts`: text and section) and over whole pages (`pages_fts`)."""

    def __init__(self, catalog: Catalog, text_weight: float = 1.0, section_weight: float = 1.0) -> None:
        self.catalog = catalog
        self.weights = (text_weight, section_weight)

    def search(self, query: str, k: int, filters: SearchFilters | None = None) -> list[tuple[int, float]]:
        """(chunk row id, BM25 score, higher is better), best first."""
        expr = match_expression(query)
        if expr is None or k <= 0:
            return []
        f = filter_sql(filters)
        sql = (
            "SELECT f.rowid, bm25(chunks_fts, ?, ?) AS s FROM chunks_fts f"
            " JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.doc_id = c.doc_id"
            f" WHERE chunks_fts MATCH ? AND {f.where} ORDER BY s LIMIT ?"
        )
        rows = self.catalog.db.execute(sql, (*self.weights, expr, *f.params, int(k))).fetchall()
        return [(int(r[0]), -float(r[1])) for r in rows]

    def search_pages(self, query: str, k: int,
                     filters: SearchFilters | None = None) -> list[tuple[str, int, float]]:
        """(doc_id, page number, BM25 score) over whole-page text, best first."""
        expr = match_expression(query)
        if expr is None or k <= 0:
            return []
        f = filter_sql(filters, page_col="CAST(p.number AS INTEGER)", kind_col=None, doc_col="p.doc_id")
        sql = (
            "SELECT p.doc_id, p.number, bm25(pages_fts) AS s FROM pages_fts p"
            " JOIN documents d ON d.doc_id = p.doc_id"
            f" WHERE pages_fts MATCH ? AND {f.where} ORDER BY s LIMIT ?"
        )
        rows = self.catalog.db.execute(sql, (expr, *f.params, int(k))).fetchall()
        return [(str(r[0]), int(r[1]), -float(r[2])) for r in rows]
