"""Layout-aware chunking: pages in, chunks out.

Rules: a chunk never crosses a page; the heading in force travels with every chunk as its section; a table is
one chunk (split by rows, header repeated, only when it exceeds the budget); a figure is one chunk whose text is
its caption and OCR text; passages are packed from whole blocks up to `max_tokens` of the embedder's own
tokenizer, without overlap (overlap re-embeds the same tokens twice and buys little with page-bounded chunks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from ingest.types import BBox, Block, Chunk, Page, ParsedDocument

TokenCounter = Callable[[str], int]
BatchTokenCounter = Callable[[list[str]], list[int]]


@dataclass(frozen=True)
class ChunkerSettings:
    max_tokens: int = 200
    min_tokens: int = 24  # a shorter tail is merged into the previous passage of the same page
    overlap_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def approx_token_count(text: str) -> int:
    """A tokenizer-free estimate (~1.3 word pieces per word) for callers without an embedder."""
    return int(len(text.split()) * 1.3) + 1


class Chunker:
    def __init__(self, count_tokens: TokenCounter = approx_token_count, settings: ChunkerSettings | None = None,
                 count_many: BatchTokenCounter | None = None):
        self._count_one = count_tokens
        self._count_many = count_many  # one tokenizer call per document for every block (Rust, parallel)
        self._known: dict[str, int] = {}
        self.settings = settings or ChunkerSettings()
        self._splitter: Any = None  # langchain's splitter, built on first use

    def count_tokens(self, text: str) -> int:
        known = self._known.get(text)
        return known if known is not None else self._count_one(text)

    def chunk(self, doc: ParsedDocument) -> list[Chunk]:
        if self._count_many is not None:
            texts = list({b.text for p in doc.pages for b in p.blocks})
            self._known = dict(zip(texts, self._count_many(texts), strict=True))
        try:
            return self._chunk(doc)
        finally:
            self._known = {}

    def _chunk(self, doc: ParsedDocument) -> list[Chunk]:
        seen: set[str] = set()
        out: list[Chunk] = []
        for page in doc.pages:
            for chunk in self._chunk_page(doc.doc_id, page):
                if chunk.chunk_id not in seen and chunk.text.strip():
                    seen.add(chunk.chunk_id)
                    out.append(chunk)
        return out

    # -- per page ---------------------------------------------------------------------------------------
    def _chunk_page(self, doc_id: str, page: Page) -> Iterator[Chunk]:
        captions = {f.caption.strip() for f in page.figures if f.caption.strip()}
        section = page.section
        pending: list[Block] = []
        for block in page.blocks:
            if block.kind == "heading":
                yield from self._flush(doc_id, page, pending, section)
                pending = []
                section = block.text.strip()[:200]
            elif block.kind == "table":
                yield from self._flush(doc_id, page, pending, section)
                pending = []
                yield from self._table_chunks(doc_id, page, block, section)
            elif block.kind == "caption" and block.text.strip() in captions:
                continue  # kept with its figure
            else:
                pending.append(block)
        yield from self._flush(doc_id, page, pending, section)
        for fig in page.figures:
            text = "\n".join(t for t in (fig.caption.strip(), fig.ocr_text.strip()) if t)
            yield Chunk(
                doc_id=doc_id,
                page=page.number,
                kind="figure",
                text=text or f"Figure on page {page.number}",
                bbox=fig.bbox,
                section=section,
                ocr=bool(fig.ocr_text),
                figure_path=fig.image_path,
                tokens=self.count_tokens(text) if text else 0,
            )

    def _flush(self, doc_id: str, page: Page, blocks: list[Block], section: str) -> Iterator[Chunk]:
        if not blocks:
            return
        budget = self.settings.max_tokens
        group: list[Block] = []
        group_tokens = 0
        packed: list[tuple[list[Block], int]] = []
        for block in blocks:
            n = self.count_tokens(block.text)
            if n > budget:
                if group:
                    packed.append((group, group_tokens))
                    group, group_tokens = [], 0
                for piece in self._split_long(block.text):
                    packed.append(([Block(piece, block.bbox, block.kind, block.ocr)], self.count_tokens(piece)))
                continue
            if group and group_tokens + n > budget:
                packed.append((group, group_tokens))
                group, group_tokens = [], 0
            group.append(block)
            group_tokens += n
        if group:
            if packed and group_tokens < self.settings.min_tokens and packed[-1][1] + group_tokens <= budget * 1.25:
                prev, prev_tokens = packed.pop()
                group, group_tokens = prev + group, prev_tokens + group_tokens
            packed.append((group, group_tokens))
        for group, tokens in packed:
            yield self._make(doc_id, page, group, section, tokens)

    def _make(self, doc_id: str, page: Page, blocks: list[Block], section: str, tokens: int) -> Chunk:
        bbox: BBox = blocks[0].bbox
        for b in blocks[1:]:
            bbox = bbox.union(b.bbox)
        return Chunk(
            doc_id=doc_id,
            page=page.number,
            kind="text",
            text="\n".join(b.text.strip() for b in blocks),
            bbox=bbox,
            section=section,
            ocr=any(b.ocr for b in blocks),
            tokens=tokens,
        )

    def _table_chunks(self, doc_id: str, page: Page, block: Block, section: str) -> Iterator[Chunk]:
        rows = block.text.splitlines()
        header = rows[:2] if len(rows) > 1 and set(rows[1].replace("|", "").strip()) <= {"-", ":", " "} else rows[:1]
        body = rows[len(header) :]
        budget = self.settings.max_tokens
        part: list[str] = []
        for row in body or [""]:
            candidate = "\n".join(header + part + [row])
            if part and self.count_tokens(candidate) > budget:
                yield self._table_chunk(doc_id, page, block, section, header + part)
                part = []
            part.append(row)
        yield self._table_chunk(doc_id, page, block, section, header + part)

    def _table_chunk(self, doc_id: str, page: Page, block: Block, section: str, rows: list[str]) -> Chunk:
        text = "\n".join(r for r in rows if r)
        return Chunk(doc_id, page.number, "table", text, block.bbox, section, block.ocr, None, self.count_tokens(text))

    def _split_long(self, text: str) -> list[str]:
        if self._splitter is None:
            from langchain_text_splitters import RecursiveCharacterTextSplitter

            self._splitter = RecursiveCharacterTextSplitter(
                chunk_size=self.settings.max_tokens,
                chunk_overlap=self.settings.overlap_tokens,
                length_function=self.count_tokens,
                separators=["\n\n", "\n", ". ", "; ", ", ", " ", ""],
            )
        return [p for p in self._splitter.split_text(text) if p.strip()]


def embedding_text(chunk: Chunk) -> str:
    """What the text embedder sees: the section heading as context, then the chunk."""
    if chunk.section and chunk.section not in chunk.text[:200]:
        return f"{chunk.section}\n{chunk.text}"
    return chunk.text
