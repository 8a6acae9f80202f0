"""Evaluation datasets (BEIR, MMLongBench-Doc pages, COCO captions) and building a KB from parsed records.

Loaders return plain records: queries {id: text}, qrels {query id: {target id: grade}}. The target ids are what
a search hit maps to: a BEIR corpus id, `<pdf name>#p<N>` for a page, an image file name for COCO.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.types import BBox, Block, Chunk, Page, ParsedDocument
from retrieval.embedding import chunker_for, embed_chunks
from retrieval.kb import KnowledgeBase
from retrieval.kb_writer import StoredFile, write_document


@dataclass
class Dataset:
    kind: str
    path: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    groups: dict[str, list[str]] = field(default_factory=dict)  # breakdown name -> query ids
    query_doc: dict[str, str] = field(default_factory=dict)  # query id -> the document it is about


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(row["score"])
    return qrels


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


# -- BEIR -----------------------------------------------------------------------------------------------------
def load_beir(path: str | Path, split: str = "test") -> Dataset:
    root = Path(path)
    qrels = read_qrels(root / "qrels" / f"{split}.tsv")
    queries = {str(q["_id"]): q["text"] for q in read_jsonl(root / "queries.jsonl") if str(q["_id"]) in qrels}
    return Dataset("beir", root, queries, qrels)


def beir_documents(path: str | Path) -> Iterator[tuple[ParsedDocument, str]]:
    """Each corpus entry as a one-page document (title as heading, text as a paragraph), named by its id."""
    for row in read_jsonl(Path(path) / "corpus.jsonl"):
        doc_id, title, text = str(row["_id"]), row.get("title", "") or "", row.get("text", "") or ""
        blocks = [Block(title, BBox(0, 0, 600, 20), "heading")] if title.strip() else []
        blocks.append(Block(text, BBox(0, 24, 600, 800), "text"))
        sha = hashlib.sha256(f"beir|{doc_id}|{title}|{text}".encode()).hexdigest()
        page = Page(number=1, width=600, height=800, blocks=tuple(blocks), section=title[:200])
        yield ParsedDocument(path=f"beir://{doc_id}", sha256=sha, kind="text", pages=(page,), title=title), doc_id


# -- MMLongBench-Doc ----------------------------------------------------------------------------------------
EVIDENCE_TYPES = ("Pure-text", "Layout", "Table", "Chart", "Figure")


def load_mmlongbench(path: str | Path) -> Dataset:
    root = Path(path)
    qrels = read_qrels(root / "qrels_pages.tsv")
    queries: dict[str, str] = {}
    groups: dict[str, list[str]] = {t: [] for t in EVIDENCE_TYPES}
    query_doc: dict[str, str] = {}
    for q in read_jsonl(root / "questions.jsonl"):
        qid = str(q["qid"])
        if qid not in qrels:
            continue  # "Not answerable": no gold page to retrieve
        queries[qid] = q["question"]
        query_doc[qid] = q["doc_id"]
        for source in q.get("evidence_sources", []):
            for t in EVIDENCE_TYPES:
                if source.startswith(t) or f"({t})" in source:
                    groups[t].append(qid)
    return Dataset("mmlongbench", root, queries, qrels, {k: sorted(set(v)) for k, v in groups.items()}, query_doc)


# -- COCO captions → images ---------------------------------------------------------------------------------
def load_coco(path: str | Path) -> Dataset:
    root = Path(path)
    files = {str(r["image_id"]): Path(r["file"]).name for r in read_jsonl(root / "images.jsonl")}
    raw = read_qrels(root / "qrels_t2i.tsv")
    qrels = {q: {files[i]: g for i, g in rel.items() if i in files} for q, rel in raw.items()}
    queries = {str(c["caption_id"]): c["caption"] for c in read_jsonl(root / "captions.jsonl")
               if str(c["caption_id"]) in qrels}
    return Dataset("coco", root, queries, qrels)


# -- building a KB from parsed records (the product's chunker, embedders and catalog; no files) -------------
def store_documents(kb: KnowledgeBase, docs: Sequence[tuple[ParsedDocument, str]], batch: int = 256,
                    progress: Callable[[int, int], None] | None = None) -> int:
    """Chunk, embed and commit documents as the KB writer does; `docs` holds (document, display name)."""
    kb._require_writable("store_documents")
    chunker = chunker_for(kb.models)
    stored = 0
    for start in range(0, len(docs), batch):
        part = docs[start : start + batch]
        chunks: list[Chunk] = []
        spans: list[tuple[int, int]] = []
        for doc, _ in part:
            doc_chunks = chunker.chunk(doc)
            spans.append((len(chunks), len(chunks) + len(doc_chunks)))
            chunks.extend(doc_chunks)
        meta, vectors = embed_chunks(kb.models, kb.assets_dir, chunks, kb.register_space)
        with kb.store.transaction():
            for (doc, name), (a, b) in zip(part, spans, strict=True):
                file = StoredFile(doc.path, doc.doc_id, doc.sha256, 0, 0.0)
                write_document(kb.store, file, doc, name, chunks[a:b], meta[a:b], _slice(vectors, a, b))
        stored += len(part)
        if progress:
            progress(stored, len(docs))
    kb.save_indexes()
    return stored


def _slice(vectors: dict[str, tuple[list[int], np.ndarray]], a: int,
           b: int) -> dict[str, tuple[Sequence[int], np.ndarray]]:
    out: dict[str, tuple[Sequence[int], np.ndarray]] = {}
    for space, (positions, matrix) in vectors.items():
        rows = [k for k, p in enumerate(positions) if a <= p < b]
        out[space] = ([positions[k] - a for k in rows], matrix[rows])
    return out
