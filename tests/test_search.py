"""The Searcher end to end on a small KB (fake embedders, a real figure image): identity, retriever ranks,
figures, query by image, filters, page level, MMR, re-scoring, rewriting, CLI, SDK and LangChain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from eval.datasets import store_documents
from ingest.types import BBox, Block, Figure, Page, ParsedDocument
from retrieval.errors import SearchError
from retrieval.kb import KnowledgeBase
from retrieval.rewrite import Turn
from retrieval.search import Searcher
from retrieval.settings import KBSettings
from retrieval.types import SearchFilters

TEXTS = {
    "manual.pdf": ["The battery lasts fourteen days in normal use.", "Charging takes two hours with the cable.",
                   "The screen is an AMOLED display of 1.39 inches."],
    "report.pdf": ["Quarterly revenue grew in every region.", "Costs fell while revenue rose sharply."],
    "notes.txt": ["Shopping list: apples, bread, coffee."],
}


def _doc(name: str, pages: Sequence[str], assets: Path, figure: bool = False) -> tuple[ParsedDocument, str]:
    sha = hashlib.sha256(name.encode()).hexdigest()
    made = []
    for number, text in enumerate(pages, 1):
        figures: tuple[Figure, ...] = ()
        if figure and number == 2:
            figures = (_figure(assets, sha[:24], "Bar chart of quarterly revenue by region"),)
        blocks = (Block(f"Part {number}", BBox(10, 10, 300, 30), "heading"), Block(text, BBox(10, 40, 500, 90)))
        made.append(Page(number, 600, 800, blocks, figures))
    kind = "text" if name.endswith(".txt") else "pdf"
    return ParsedDocument(path=f"/docs/{name}", sha256=sha, kind=kind, pages=tuple(made)), name  # type: ignore[arg-type]


def _figure(assets: Path, doc_id: str, caption: str) -> Figure:
    from PIL import Image

    folder = assets / doc_id
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[:, :20] = 200
    pixels[40:, 30:] = 90
    Image.fromarray(pixels).save(folder / "fig1.png")
    return Figure(BBox(50, 100, 450, 400), f"{doc_id}/fig1.png", "0" * 64, 64, 64, caption=caption)


@pytest.fixture(scope="module")
def kb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("search") / "kb"
    settings = KBSettings(text_model="fake", image_model="fake", tag_images=False)
    with KnowledgeBase.open(root, settings, writable=True) as kb:
        docs = [_doc(name, pages, kb.assets_dir, figure=name == "report.pdf") for name, pages in TEXTS.items()]
        store_documents(kb, docs)
    return root


@pytest.fixture(scope="module")
def searcher(kb_dir: Path):  # type: ignore[no-untyped-def]
    kb = KnowledgeBase.open(kb_dir)
    yield Searcher(kb)
    kb.close()


def test_hits_say_what_where_and_which_retrievers(searcher: Searcher) -> None:
    hits = searcher.search("how long does the battery last", top_k=3)
    top = hits[0]
    assert (top.doc_name, top.page, top.kind) == ("manual.pdf", 1, "text")
    assert top.bbox is not None and "battery" in top.text
    assert top.retrievers.get("bm25") == 1 and "dense" in top.retrievers
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_figures_are_found_through_their_description(searcher: Searcher) -> None:
    hits = searcher.search("revenue bar chart", top_k=5)
    figure = next(h for h in hits if h.kind == "figure")
    assert figure.retrievers.get("figures") == 1
    assert figure.figure_path and figure.figure_path.endswith("fig1.png") and figure.page == 2
    only = searcher.search("revenue", top_k=5, filters=SearchFilters(modalities=("figure",)))
    assert [h.kind for h in only] == ["figure"]


def test_query_by_image(searcher: Searcher, kb_dir: Path) -> None:
    image = next((kb_dir / "assets").rglob("fig1.png"))
    hits = searcher.search(image=str(image), top_k=3)
    assert hits[0].kind == "figure" and hits[0].retrievers.get("image") == 1
    with pytest.raises(FileNotFoundError):
        searcher.search(image=str(kb_dir / "missing.png"))


def test_filters(searcher: Searcher) -> None:
    assert {h.doc_name for h in searcher.search("revenue battery", filters=SearchFilters(docs=("manual.pdf",)))} == \
        {"manual.pdf"}
    assert {h.page for h in searcher.search("battery charging screen", filters=SearchFilters(pages=(2, 3)))} <= {2, 3}
    assert {h.doc_name for h in searcher.search("list", filters=SearchFilters(file_types=("text",)))} == {"notes.txt"}
    assert searcher.search("battery", filters=SearchFilters(docs=("nope.pdf",))) == []


def test_page_level(searcher: Searcher) -> None:
    pages = searcher.search("revenue", top_k=5, level="page")
    keys = [(h.doc_name, h.page) for h in pages]
    assert len(keys) == len(set(keys)) and all(h.kind == "page" for h in pages)
    assert keys[0][0] == "report.pdf" and "page_bm25" in pages[0].retrievers
    assert "revenue" in pages[0].text.lower()


def test_mmr_and_rescore(searcher: Searcher) -> None:
    plain = searcher.search("revenue", top_k=4)
    diverse = searcher.search("revenue", top_k=4, mmr=0.3)
    assert len(diverse) == len(plain) and len({h.id for h in diverse}) == len(diverse)

    class Reverse:
        name = "reverse"

        def score(self, query: str, texts: Sequence[str]) -> list[float]:
            return [float(i) for i in range(len(texts))]  # prefers the last candidates

    searcher.rescorer = Reverse()
    try:
        rescored = searcher.search("revenue", top_k=4, rescore=True, weights={"rescore": 5.0})
        pages = searcher.search("revenue", top_k=3, rescore=True, level="page")
    finally:
        searcher.rescorer = None
    assert all("rescore" in h.retrievers for h in rescored)
    assert [h.id for h in rescored] != [h.id for h in plain]
    assert pages and all("rescore" in h.retrievers and h.kind == "page" for h in pages)


def test_errors(searcher: Searcher) -> None:
    with pytest.raises(SearchError, match="nothing to search"):
        searcher.search("   ")
    with pytest.raises(SearchError, match="unknown retriever"):
        searcher.search("x", retrievers=["colbert"])
    with pytest.raises(SearchError, match="re-scorer"):
        searcher.search("x", rescore=True)


def test_follow_up_is_rewritten_with_the_previous_turn(searcher: Searcher) -> None:
    hits = searcher.search("and how long does it take?", top_k=1,
                           history=[Turn("Charging with the cable", "Two hours.")])
    assert "Charging" in hits[0].text


def test_cli_json_and_table(kb_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main

    assert main(["search", "battery", "--kb", str(kb_dir), "--json", "--top-k", "2"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 2
    assert set(hits[0]) >= {"doc", "page", "bbox", "kind", "text", "score", "retrievers"}
    assert hits[0]["kind"] in ("text", "figure", "page") and hits[0]["doc"] == "manual.pdf"
    assert main(["search", "revenue", "--kb", str(kb_dir), "--doc", "report.pdf"]) == 0
    out = capsys.readouterr().out
    assert "report.pdf" in out and "manual.pdf" not in out
    assert main(["search", "battery", "--kb", str(kb_dir), "--doc", "nope.pdf"]) == 1
    assert main(["search", "--kb", str(kb_dir)]) == 2  # nothing to search for


def test_sdk_search_and_langchain(kb_dir: Path) -> None:
    from assistant.sdk import Citeline

    with Citeline(kb_dir) as sdk:
        hits = sdk.search("screen display", top_k=2, docs=["manual.pdf"])
        assert hits and all(h.doc_name == "manual.pdf" for h in hits)
        docs = sdk.as_langchain_retriever(top_k=2).invoke("screen display")
    from langchain_core.retrievers import BaseRetriever

    assert docs and docs[0].metadata["source"] == "manual.pdf"
    assert {"page", "bbox", "retrievers", "kind", "score"} <= set(docs[0].metadata)
    assert isinstance(Citeline(kb_dir).as_langchain_retriever(), BaseRetriever)
