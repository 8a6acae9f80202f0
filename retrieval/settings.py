"""How a knowledge base is built: its settings, the models they name (built on first use), and the embedding
spaces its vectors live in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ingest.chunking import ChunkerSettings
from ingest.isolation import Limits
from ingest.protocols import ParseOptions

TEXT = "text"
IMAGE = "image"


@dataclass(frozen=True)
class KBSettings:
    """How a KB is built. None means: what the KB was built with, or the offline default for a new KB."""

    text_model: str | None = None  # minilm-q8 (default) | minilm-int8 | minilm | mpnet | st:<name or path> | fake
    image_model: str | None = None  # tagger (default) | clip:<arch>:<tag or path or none> | none | fake
    tag_images: bool = True  # ImageNet tags from the offline tagger added to figure descriptions
    chunker: ChunkerSettings = field(default_factory=ChunkerSettings)
    ocr: bool = True
    ocr_language: str = "eng"
    limits: Limits = field(default_factory=Limits)
    # the parsers' other options (thumbnails, figure and page bounds, Office rendering); each run fills in the
    # assets folder, the passwords, `ocr` and `ocr_language`
    parse: ParseOptions = field(default_factory=lambda: ParseOptions(assets_dir=""))

    def resolved(self, manifest: dict[str, Any] | None) -> KBSettings:
        spaces = (manifest or {}).get("spaces", {})
        text = self.text_model or spaces.get(TEXT, {}).get("model") or "minilm-q8"
        image = (self.image_model or spaces.get(IMAGE, {}).get("model") or (manifest or {}).get("image_model")
                 or "tagger")
        return replace(self, text_model=text, image_model=image)


class ModelSet:
    """The models a KB uses, built on first use (status and remove never load a model)."""

    def __init__(self, settings: KBSettings, factory: Callable[[str, str], Any] | None = None) -> None:
        self.settings = settings
        self._factory = factory or default_model_factory
        self._built: dict[str, Any] = {}

    def _get(self, role: str, spec: str) -> Any:
        if role not in self._built:
            self._built[role] = self._factory(role, spec)
        return self._built[role]

    @property
    def text(self) -> Any:
        return self._get("text", self.settings.text_model or "minilm-q8")

    @property
    def image(self) -> Any | None:
        spec = self.settings.image_model or "tagger"
        if spec == "none":
            return None
        if spec in ("tagger", "efficientnet-lite0") and self.settings.tag_images:
            return self.tagger
        return self._get("image", spec)

    @property
    def tagger(self) -> Any | None:
        if not self.settings.tag_images or (self.settings.image_model or "") == "fake":
            return None
        return self._get("tagger", "tagger")


def default_model_factory(role: str, spec: str) -> Any:
    if role == "text":
        from retrieval.embedders import build_text_embedder

        return build_text_embedder(spec)
    if role == "tagger":
        from retrieval.tagger import EfficientNetTagger

        return EfficientNetTagger(threads=1)  # ~15 ms an image on one core; the parser worker has the other
    from retrieval.clip import build_image_embedder

    return build_image_embedder(spec)


def space_info(model: str, dimension: int, normalized: bool = True) -> dict[str, Any]:
    """A space's manifest entry: the model that built its vectors, their dimension and how they compare."""
    return {"model": model, "dimension": dimension, "normalized": normalized, "metric": "inner_product"}
