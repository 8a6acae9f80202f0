"""How the PostgreSQL backend writes and reads rows: a document's pages and chunks as multi-row INSERTs (arrays
unnested in input order, tsvectors computed by the server), its vectors as one binary COPY packed by numpy, and
chunk rows read back into `StoredChunk`s. No connection handling here: each function works inside the caller's
transaction (`retrieval.store.postgres`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ingest.types import BBox, Chunk, ParsedDocument
from retrieval.store.protocol import StoredChunk

CHUNK_COLS = ("c.id, c.doc_id, c.page, c.kind, c.text, c.bbox, c.section, c.ocr, c.figure_path, c.tokens, "
              "c.meta, d.name")
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\0" + b"\0" * 8  # the binary COPY header: signature, flags, extension length
_COPY_TRAILER = b"\xff\xff"


def insert_pages(conn: Any, doc: ParsedDocument) -> None:
    """All the pages in one statement (arrays unnested), tsvector computed by the server as row by row."""
    if not doc.pages:
        return
    pages, texts = doc.pages, [p.text for p in doc.pages]
    conn.execute(
        "INSERT INTO pages SELECT %s, u.number, u.width, u.height, u.ocr, u.thumbnail, u.section, u.text,"
        " to_tsvector('english', u.lex) FROM unnest(%s::int4[], %s::float8[], %s::float8[], %s::int4[],"
        " %s::text[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY"
        " AS u(number, width, height, ocr, thumbnail, section, text, lex, ord) ORDER BY u.ord",
        (doc.doc_id, [p.number for p in pages], [_float(p.width) for p in pages],
         [_float(p.height) for p in pages], [int(p.ocr) for p in pages], [p.thumbnail for p in pages],
         [p.section for p in pages], texts, [t or "" for t in texts]))


def insert_chunks(conn: Any, chunks: Sequence[Chunk], chunk_meta: Sequence[dict[str, Any]], batch: int) -> list[int]:
    """Multi-row inserts of `batch` chunks each (arrays unnested in input order, so the identity ids are drawn in
    that order, as one INSERT per chunk drew them); the tsvector is computed by the server. The ids in input
    order."""
    # the lexical text is the chunk's text plus "\n" and its image tags, if any: the suffix travels, not a
    # second copy of the text; the section's tsvector is of '' where there is none
    rows = [(c.chunk_id, c.doc_id, c.page, c.kind, c.text, json.dumps(c.bbox.as_list()) if c.bbox else None,
             c.section, int(c.ocr), c.figure_path, c.tokens, json.dumps(m),
             "\n" + m["tags"] if m.get("tags") else "")
            for c, m in zip(chunks, chunk_meta, strict=True)]
    ids: list[int] = []
    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        columns = [list(col) for col in zip(*part, strict=True)]
        got = conn.execute(
            "INSERT INTO chunks(chunk_id, doc_id, page, kind, text, bbox, section, ocr, figure_path, tokens, meta,"
            " tsv) SELECT u.chunk_id, u.doc_id, u.page, u.kind, u.text, u.bbox, u.section, u.ocr, u.figure_path,"
            " u.tokens, u.meta, to_tsvector('english', u.text || u.tags) ||"
            " to_tsvector('english', coalesce(u.section, '')) FROM unnest(%s::text[], %s::text[], %s::int4[],"
            " %s::text[], %s::text[], %s::text[], %s::text[], %s::int4[], %s::text[], %s::int4[], %s::text[],"
            " %s::text[]) WITH ORDINALITY AS"
            " u(chunk_id, doc_id, page, kind, text, bbox, section, ocr, figure_path, tokens, meta, tags, ord)"
            " ORDER BY u.ord RETURNING id, chunk_id", columns).fetchall()
        id_of = {str(chunk_id): int(i) for i, chunk_id in got}
        ids += [id_of[row[0]] for row in part]
    return ids


def copy_vectors(conn: Any, table: str | None, ids: Sequence[int], matrix: np.ndarray) -> None:
    """One binary COPY of (id, vector) rows into a space's table, packed by numpy (`copy_vectors_binary`) rather
    than one Python `write_row` per vector."""
    with conn.cursor() as cur, cur.copy(f"COPY {table}(id, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
        for data in copy_vectors_binary(np.asarray(ids, dtype=np.int64), matrix):
            copy.write(data)


def copy_vectors_binary(ids: np.ndarray, matrix: np.ndarray, block: int = 8192) -> Iterator[bytes]:
    """The binary COPY stream of rows (id int8, embedding vector), in blocks of `block` rows: the bytes that
    `copy.write_row((id, vector))` per row writes with pgvector's binary dumper (uint16 dimension, uint16 0,
    big-endian float4s), packed by numpy."""
    n, d = matrix.shape
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} vectors")
    row = np.dtype([("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8"), ("vec_len", ">i4"), ("dim", ">u2"),
                    ("unused", ">u2"), ("vec", ">f4", (d,))])
    yield _COPY_SIGNATURE
    for start in range(0, n, block):
        part = np.empty(min(block, n - start), dtype=row)
        part["fields"], part["id_len"], part["vec_len"], part["dim"], part["unused"] = 2, 8, 4 + 4 * d, d, 0
        part["id"] = ids[start : start + block]
        part["vec"] = matrix[start : start + block]
        yield part.tobytes()
    yield _COPY_TRAILER


def stored_chunks(rows: Sequence[Any]) -> dict[int, StoredChunk]:
    """Rows of `SELECT {CHUNK_COLS}` as stored chunks, by id."""
    out: dict[int, StoredChunk] = {}
    for r in rows:
        chunk = Chunk(r[1], r[2], r[3], r[4], BBox.from_list(json.loads(r[5]) if r[5] else None), r[6] or "",
                      bool(r[7]), r[8], r[9] or 0)
        out[int(r[0])] = StoredChunk(int(r[0]), chunk, r[11], json.loads(r[10] or "{}"))
    return out


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)
