"""BM25 over FTS5: safe MATCH expressions, stemming, stop words, filters, incremental updates."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from eval.datasets import store_documents
from ingest.types import BBox, Block, Page, ParsedDocument
from retrieval.kb import KnowledgeBase
from retrieval.lexical import LexicalIndex, match_expression, query_terms
from retrieval.settings import KBSettings
from retrieval.types import SearchFilters

NASTY = ['"', "'", '"unbalanced', "AND", "OR OR", "NOT x", "NEAR(a b, 3)", "a*", "*", "col:term", "^start",
         "(((", ")", "{a b}", "-x", "+y", "x AND", "\\", "\x00", "🙂 emoji", "a\"b\"c", "text:foo", "rowid:1",
         " ", "", "the of and", "ümlaut straße", "日本語のテキスト", "a" * 5000, "x " * 1000]


def doc(name: str, pages: list[str], kind: str = "pdf") -> tuple[ParsedDocument, str]:
    sha = hashlib.sha256(("|".join(pages) + name).encode()).hexdigest()
    made = tuple(Page(i, 600, 800, (Block(text, BBox(0, 0, 600, 100)),)) for i, text in enumerate(pages, 1))
    return ParsedDocument(path=f"/data/{name}", sha256=sha, kind=kind, pages=made), name  # type: ignore[arg-type]


@pytest.fixture
def kb(tmp_path: Path):  # type: ignore[no-untyped-def]
    kb = KnowledgeBase.open(tmp_path / "kb", KBSettings(text_model="fake", image_model="none"), writable=True)
    store_documents(kb, [
        doc("runners.pdf", ["The runner runs daily marathons.", "Swimming in cold lakes."]),
        doc("cooking.pdf", ["Baking bread requires yeast and patience.", "The oven temperature matters."]),
        doc("notes.txt", ["A runner's diet: bread, pasta, rice."], kind="text"),
    ])
    yield kb
    kb.close()


def test_terms_drop_stop_words_and_duplicates() -> None:
    assert query_terms("What is THE running of the runners? running!") == ["running", "runners"]
    assert match_expression("the of and") is None
    assert match_expression('say "hi" AND bye') == '"say" OR "hi" OR "bye"'


@pytest.mark.parametrize("query", NASTY)
def test_fts5_syntax_never_crashes(kb: KnowledgeBase, query: str) -> None:
    lex = LexicalIndex(kb.catalog)
    assert isinstance(lex.search(query, 5), list)
    assert isinstance(lex.search_pages(query, 5), list)


def test_porter_stemming_and_scores(kb: KnowledgeBase) -> None:
    lex = LexicalIndex(kb.catalog)
    hits = lex.search("running", 10)  # porter: running → run, which "runs" also becomes
    names = _names(kb, [i for i, _ in hits])
    assert "runners.pdf" in names
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    cooking = next(d.doc_id for d in kb.catalog.documents() if d.name == "cooking.pdf")
    assert lex.search_pages("baked breads", 10)[0][:2] == (cooking, 1)


def test_filters(kb: KnowledgeBase) -> None:
    lex = LexicalIndex(kb.catalog)
    assert _names(kb, [i for i, _ in lex.search("bread", 10, SearchFilters(docs=("notes.txt",)))]) == ["notes.txt"]
    assert _names(kb, [i for i, _ in lex.search("bread", 10, SearchFilters(file_types=("pdf",)))]) == ["cooking.pdf"]
    assert lex.search("oven", 10, SearchFilters(pages=(1, 1))) == []
    assert len(lex.search("oven", 10, SearchFilters(pages=(2, 2)))) == 1
    assert _names(kb, [i for i, _ in lex.search("bread", 10, SearchFilters(path_glob="*/cook*"))]) == ["cooking.pdf"]
    assert lex.search("bread", 10, SearchFilters(modalities=("figure",))) == []
    notes = next(d.doc_id for d in kb.catalog.documents() if d.name == "notes.txt")
    assert [d for d, _, _ in lex.search_pages("bread", 10, SearchFilters(docs=("notes.txt",)))] == [notes]


def test_index_follows_the_kb_incrementally(kb: KnowledgeBase) -> None:
    lex = LexicalIndex(kb.catalog)
    assert lex.search("zeppelin", 5) == []
    store_documents(kb, [doc("air.pdf", ["A zeppelin floats over the city."])])
    assert _names(kb, [i for i, _ in lex.search("zeppelins", 5)]) == ["air.pdf"]
    with kb.catalog.transaction() as db:
        kb.catalog.drop_file(db, "/data/air.pdf")
    assert lex.search("zeppelin", 5) == []


def _names(kb: KnowledgeBase, ids: list[int]) -> list[str]:
    stored = kb.catalog.get_chunks(ids)
    return list(dict.fromkeys(stored[i].doc_name for i in ids))
