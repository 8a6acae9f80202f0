"""The embedding stage: describe figures (tags), embed every chunk's text and every figure's pixels.

Takes the models and the asset folder, not a knowledge base, so ingest, reindex and the eval datasets share
it; the spaces the vectors belong to are handed to a `register_space(space, model, dimension)` callback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.chunking import Chunker, embedding_text
from ingest.types import Chunk
from retrieval.settings import IMAGE, TEXT, ModelSet, space_info
from retrieval.store.protocol import Store, StoredChunk

Vectors = dict[str, tuple[list[int], np.ndarray]]  # space -> (chunk positions or ids, one row each)
RegisterSpace = Callable[[str, str, int], None]


@dataclass
class Prepared:
    """A document's chunks with their figure descriptions and image vectors, ready for the text embedder."""

    chunks: list[Chunk]
    meta: list[dict[str, Any]]
    texts: list[str]
    image: tuple[list[int], np.ndarray] | None


def chunker_for(models: ModelSet) -> Chunker:
    """The chunker that counts tokens with the text model's own tokenizer."""
    model = models.text
    return Chunker(model.count_tokens, models.settings.chunker, getattr(model, "count_tokens_many", None))


def prepare_chunks(models: ModelSet, assets_dir: Path, chunks: list[Chunk]) -> Prepared:
    """Describe figures (tags) and embed their pixels; build what the text embedder will see. Thread-safe
    beside `embed_prepared` (the tagger serves tags and features from one forward pass)."""
    meta: list[dict[str, Any]] = [{} for _ in chunks]
    fig_pos = [i for i, c in enumerate(chunks) if c.kind == "figure" and c.figure_path]
    fig_paths = [str(assets_dir / (chunks[i].figure_path or "")) for i in fig_pos]
    tagger = models.tagger
    if tagger is not None and fig_paths:
        for i, tags in zip(fig_pos, _per_image(tagger.tag, fig_paths, []), strict=True):
            meta[i]["tags"] = ", ".join(label for label, p in tags if p >= 0.05)
    image: tuple[list[int], np.ndarray] | None = None
    image_model = models.image
    if image_model is not None and fig_paths:
        rows = _per_image(image_model.embed_images, fig_paths, None)
        keep = [k for k, row in enumerate(rows) if row is not None]
        image = ([fig_pos[k] for k in keep], np.asarray([rows[k] for k in keep], dtype=np.float32).reshape(
            len(keep), image_model.dimension))
    texts = [_text_to_embed(c, m) for c, m in zip(chunks, meta, strict=True)]
    return Prepared(chunks, meta, texts, image)


def embed_prepared(models: ModelSet, prepared: Prepared, register_space: RegisterSpace) -> Vectors:
    """Embed the chunks' text; register the spaces the vectors belong to."""
    vectors: Vectors = {}
    settings = models.settings
    if prepared.chunks:
        text_model = models.text
        register_space(TEXT, settings.text_model or text_model.name, text_model.dimension)
        vectors[TEXT] = (list(range(len(prepared.chunks))),
                         np.asarray(text_model.embed(prepared.texts), dtype=np.float32))
    # the image model is touched only when figures were described (then the preparing thread has built it)
    image_model = models.image if prepared.image is not None else None
    if prepared.image is not None and image_model is not None:
        register_space(IMAGE, settings.image_model or image_model.name, image_model.dimension)
        if prepared.image[0]:
            vectors[IMAGE] = prepared.image
    return vectors


def embed_chunks(models: ModelSet, assets_dir: Path, chunks: list[Chunk],
                 register_space: RegisterSpace) -> tuple[list[dict[str, Any]], Vectors]:
    """Describe figures (tags), embed every chunk's text and every figure's pixels. Registers spaces."""
    prepared = prepare_chunks(models, assets_dir, chunks)
    return prepared.meta, embed_prepared(models, prepared, register_space)


def embed_stored_chunks(store: Store, models: ModelSet, assets_dir: Path, spaces: dict[str, Any],
                        progress: Callable[[int, int], None] | None = None) -> Vectors:
    """Embed every chunk in the store with the configured models (for reindex). Fills `spaces`."""
    all_ids = store.chunk_ids()
    out: dict[str, tuple[list[int], list[np.ndarray]]] = {}
    for start in range(0, len(all_ids), 256):
        stored = store.get_chunks(all_ids[start : start + 256])
        batch = [stored[i] for i in all_ids[start : start + 256] if i in stored]
        _embed_stored_text(models, batch, spaces, out)
        _embed_stored_figures(models, assets_dir, batch, spaces, out)
        if progress:
            progress(min(start + 256, len(all_ids)), len(all_ids))
    return {space: (ids, np.concatenate(mats)) for space, (ids, mats) in out.items()}


def _embed_stored_text(models: ModelSet, batch: list[StoredChunk], spaces: dict[str, Any],
                       out: dict[str, tuple[list[int], list[np.ndarray]]]) -> None:
    texts = [_text_to_embed(s.chunk, s.meta) for s in batch]
    text_model = models.text
    spaces[TEXT] = space_info(models.settings.text_model or text_model.name, text_model.dimension)
    ids, mats = out.setdefault(TEXT, ([], []))
    ids.extend(s.id for s in batch)
    mats.append(np.asarray(text_model.embed(texts), dtype=np.float32))


def _embed_stored_figures(models: ModelSet, assets_dir: Path, batch: list[StoredChunk], spaces: dict[str, Any],
                          out: dict[str, tuple[list[int], list[np.ndarray]]]) -> None:
    figs = [s for s in batch if s.chunk.kind == "figure" and s.chunk.figure_path]
    image_model = models.image
    if not figs or image_model is None:
        return
    spaces[IMAGE] = space_info(models.settings.image_model or image_model.name, image_model.dimension)
    rows = _per_image(image_model.embed_images, [str(assets_dir / (s.chunk.figure_path or "")) for s in figs], None)
    kept = [(s.id, row) for s, row in zip(figs, rows, strict=True) if row is not None]
    if kept:
        ids, mats = out.setdefault(IMAGE, ([], []))
        ids.extend(i for i, _ in kept)
        mats.append(np.asarray([row for _, row in kept], dtype=np.float32))


def _text_to_embed(chunk: Chunk, meta: dict[str, Any]) -> str:
    """What the text embedder sees: the chunk with its section, and a figure's ImageNet tags."""
    tags = meta.get("tags")
    return embedding_text(chunk) + (f"\nImage shows: {tags}" if tags else "")


def _per_image(fn: Callable[[list[str]], Any], paths: list[str], failed: Any) -> list[Any]:
    """Run a batch image model; if one unreadable crop breaks the batch, retry one by one and mark failures."""
    try:
        return list(fn(paths))
    except Exception:
        out = []
        for path in paths:
            try:
                out.append(list(fn([path]))[0])
            except Exception:
                out.append(failed)
        return out
