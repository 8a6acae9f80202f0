"""EfficientNet-Lite0 (ImageNet-1k, offline weights): top-k labels for an image and its 1280-d pooled features.

One forward pass gives both. The TF-trained weights expect TF preprocessing, (x - 127) / 128; ImageNet
mean/std normalisation gives confidently wrong labels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import numpy as np

from retrieval import embedder_models
from retrieval.errors import TextQueriesUnsupported
from retrieval.vectors import normalise

IMAGE_SIZE = 224
RESIZE_SHORT_SIDE = round(IMAGE_SIZE / 0.875)  # 256, as in the TF reference eval


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    text = resources.files("retrieval").joinpath("imagenet_labels.txt").read_text(encoding="utf-8")
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(labels) != 1000:
        raise RuntimeError(f"retrieval/imagenet_labels.txt has {len(labels)} labels, expected 1000")
    return labels


def preprocess(path: str) -> np.ndarray:
    """(3, 224, 224) float32: short side to 256 bicubic, centre crop 224, (x - 127) / 128."""
    from PIL import Image, ImageOps

    with Image.open(path) as src:
        src.draft("RGB", (RESIZE_SHORT_SIDE, RESIZE_SHORT_SIDE))  # JPEG: decode at reduced scale, much faster
        rgb = ImageOps.exif_transpose(src).convert("RGB")
    scale = RESIZE_SHORT_SIDE / min(rgb.size)
    w, h = max(IMAGE_SIZE, round(rgb.width * scale)), max(IMAGE_SIZE, round(rgb.height * scale))
    left, top = (w - IMAGE_SIZE) // 2, (h - IMAGE_SIZE) // 2
    square = rgb.resize((w, h), Image.Resampling.BICUBIC).crop(
        (left, top, left + IMAGE_SIZE, top + IMAGE_SIZE)
    )
    pixels = np.asarray(square, np.float32)
    return ((pixels - 127.0) / 128.0).transpose(2, 0, 1)


def _stamp(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


class EfficientNetTagger:
    """ImageTagger (top-k ImageNet labels) and ImageEmbedder (pooled features), from one forward pass.

    Runs an ONNX export of the verified weights on onnxruntime (exported once, cached beside the other derived
    models); torch is needed only for that one export.
    """

    name = "efficientnet-lite0"
    dimension = 1280
    supports_text_queries = False

    def __init__(self, top_k: int = 5, batch_size: int = 16, threads: int | None = None,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        self._session = embedder_models.onnx_session(
            embedder_models.efficientnet_lite0_onnx(cache_dir or embedder_models.cache_dir()), threads)
        self.top_k = top_k
        self.batch_size = batch_size
        self._labels = imagenet_labels()
        self._last: tuple[tuple[str, ...], tuple[np.ndarray, np.ndarray]] | None = None

    def _forward(self, paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(features (n, 1280) un-normalised, probabilities (n, 1000)), batched.

        The last result is kept: ingest asks for tags and then features of the same crops, one pass serves both.
        """
        key = tuple(f"{p}\0{_stamp(p)}" for p in paths)  # a rewritten file is not served stale results
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        feats, probs = [], []
        for start in range(0, len(paths), self.batch_size):
            batch = np.stack([preprocess(p) for p in paths[start : start + self.batch_size]])
            f, p = self._session.run(None, {"pixels": batch.astype(np.float32, copy=False)})
            feats.append(f)
            probs.append(p)
        result = (np.concatenate(feats), np.concatenate(probs))
        self._last = (key, result)
        return result

    def tag(self, paths: Sequence[str]) -> list[list[tuple[str, float]]]:
        if not paths:
            return []
        _, probs = self._forward(paths)
        return [self._top(row) for row in probs]

    def _top(self, row: np.ndarray) -> list[tuple[str, float]]:
        best = np.argsort(-row)[: self.top_k]
        return [(self._labels[i], float(row[i])) for i in best]

    def embed_images(self, paths: Sequence[str]) -> np.ndarray:
        if not paths:
            return np.zeros((0, self.dimension), np.float32)
        feats, _ = self._forward(paths)
        return normalise(feats)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise TextQueriesUnsupported(self.name)
