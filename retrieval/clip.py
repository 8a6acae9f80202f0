"""CLIP image and text embeddings in one space, through open_clip (the `clip` extra).

`pretrained` is an open_clip tag (`openai`, downloaded on first use), a local checkpoint file, or None for
random weights (tests); `model_name` may also be an open_clip schema (`hf-hub:<repo>`, `local-dir:<folder>`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.errors import MissingDependency
from retrieval.errors import UnknownEmbedder

if TYPE_CHECKING:
    from retrieval.protocols import ImageEmbedder

CLIP_INSTALL = "pip install 'citeline[clip]'"
IMAGE_EMBEDDERS = ("tagger", "efficientnet-lite0", "clip:<model>[:<tag>|:<checkpoint path>|:none]", "fake")
_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def _import_open_clip() -> Any:
    try:
        import open_clip
    except ImportError as e:
        raise MissingDependency("open_clip (CLIP image embeddings)", CLIP_INSTALL) from e
    return open_clip


class OpenClipEmbedder:
    supports_text_queries = True

    def __init__(self, model_name: str, pretrained: str | None = None, batch_size: int = 32) -> None:
        open_clip = _import_open_clip()
        import torch

        looks_like_path = pretrained is not None and (
            "/" in pretrained or pretrained.endswith(_CHECKPOINT_SUFFIXES)
        )
        if pretrained is not None and looks_like_path and not Path(pretrained).is_file():
            raise FileNotFoundError(f"CLIP checkpoint {pretrained} does not exist")
        self._torch = torch
        self._model, _, self._preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=pretrained, device="cpu"
        )
        self._model.eval()
        self._tokenizer = open_clip.get_tokenizer(model_name)
        self.name = f"clip:{model_name}:{pretrained or 'none'}"
        self.batch_size = batch_size
        self.dimension = int(self._encode_text([""]).shape[1])

    def _encode_text(self, texts: Sequence[str]) -> np.ndarray:
        with self._torch.inference_mode():
            return self._model.encode_text(self._tokenizer(list(texts)), normalize=True).float().numpy()

    def _encode_images(self, paths: Sequence[str]) -> np.ndarray:
        from PIL import Image

        tensors = []
        for path in paths:
            with Image.open(path) as im:
                tensors.append(self._preprocess(im.convert("RGB")))
        with self._torch.inference_mode():
            return self._model.encode_image(self._torch.stack(tensors), normalize=True).float().numpy()

    def _batched(self, encode: Any, items: Sequence[str]) -> np.ndarray:
        if not items:
            return np.zeros((0, self.dimension), np.float32)
        parts = [encode(items[i : i + self.batch_size]) for i in range(0, len(items), self.batch_size)]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def embed_images(self, paths: Sequence[str]) -> np.ndarray:
        return self._batched(self._encode_images, paths)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self._batched(self._encode_text, texts)


def build_image_embedder(spec: str = "tagger") -> ImageEmbedder:
    """Turn a spec (`tagger`, `efficientnet-lite0`, `clip:<model>[:<pretrained>]`, `fake`) into an ImageEmbedder.

    For CLIP, `<pretrained>` is an open_clip tag (`openai`, downloaded on first use), a local checkpoint path,
    or `none` for random weights; it defaults to `openai`. `clip:hf-hub:<repo>` and `clip:local-dir:<folder>`
    carry their own weights.
    """
    if spec in ("tagger", "efficientnet-lite0"):
        from retrieval.tagger import EfficientNetTagger

        return EfficientNetTagger()
    if spec.startswith("clip:") and len(spec) > 5:
        model_name, pretrained = parse_clip_spec(spec[5:])
        return OpenClipEmbedder(model_name, pretrained)
    if spec == "fake":
        from retrieval.fakes import HashImageEmbedder

        return HashImageEmbedder()
    raise UnknownEmbedder(spec, IMAGE_EMBEDDERS)


def parse_clip_spec(rest: str) -> tuple[str, str | None]:
    """`ViT-B-32:openai` -> (ViT-B-32, openai); `ViT-B-32:none` -> (ViT-B-32, None); paths may hold colons."""
    if rest.startswith(("hf-hub:", "local-dir:")):  # open_clip schemas: config and weights come together
        return rest, None
    model_name, _, pretrained = rest.partition(":")
    if not pretrained:
        return model_name, "openai"
    return model_name, None if pretrained.lower() == "none" else pretrained
