"""OpenClipEmbedder through open_clip's real loading code, with a tiny config and random weights.

Runs in the clip venv (open_clip needs torchvision); the main venv skips it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

open_clip = pytest.importorskip(
    "open_clip", reason="the CLIP suite needs open_clip + torchvision, which live in their own venv: "
    "`bash scripts/setup.sh --dev --clip && .venv-clip/bin/python -m pytest -m clip tests/test_clip.py`")
torch = pytest.importorskip("torch")

from retrieval.clip import OpenClipEmbedder, build_image_embedder  # noqa: E402

pytestmark = pytest.mark.clip

TINY = "citeline-tiny-clip"
TINY_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture(scope="module")
def tiny_model_name(tmp_path_factory: pytest.TempPathFactory) -> str:
    config_dir = tmp_path_factory.mktemp("clip-configs")
    (config_dir / f"{TINY}.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(config_dir)
    return TINY


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 255, (40 + i * 7, 50, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def embedder(tiny_model_name: str) -> OpenClipEmbedder:
    torch.manual_seed(0)
    return build_image_embedder(f"clip:{tiny_model_name}:none")  # type: ignore[return-value]


def _unit_rows(x: np.ndarray, n: int, dim: int) -> None:
    assert x.shape == (n, dim) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_random_weights_embed_images_and_texts(embedder: OpenClipEmbedder, images: list[str]) -> None:
    assert embedder.supports_text_queries and embedder.dimension == 32
    assert embedder.name == f"clip:{TINY}:none"
    _unit_rows(embedder.embed_images(images), 3, 32)
    _unit_rows(embedder.embed_texts(["a zebra", "a red bus", ""]), 3, 32)
    assert embedder.embed_images([]).shape == (0, 32)
    assert embedder.embed_texts([]).shape == (0, 32)


def test_batching_does_not_change_results(embedder: OpenClipEmbedder, images: list[str]) -> None:
    whole = embedder.embed_images(images)
    embedder.batch_size = 2
    try:
        np.testing.assert_allclose(embedder.embed_images(images), whole, atol=1e-5)
    finally:
        embedder.batch_size = 32


def test_local_checkpoint_round_trip(
    embedder: OpenClipEmbedder, images: list[str], tmp_path: Path, tiny_model_name: str
) -> None:
    checkpoint = tmp_path / "tiny.pt"
    torch.save({"state_dict": embedder._model.state_dict()}, checkpoint)
    reloaded = build_image_embedder(f"clip:{tiny_model_name}:{checkpoint}")
    assert reloaded.name == f"clip:{tiny_model_name}:{checkpoint}"
    np.testing.assert_allclose(reloaded.embed_images(images), embedder.embed_images(images), atol=1e-6)
    texts = ["a photo of a cat", "a diagram"]
    np.testing.assert_allclose(reloaded.embed_texts(texts), embedder.embed_texts(texts), atol=1e-6)


def test_missing_checkpoint_file_is_a_clear_error(tiny_model_name: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OpenClipEmbedder(tiny_model_name, str(tmp_path / "nope.pt"))


def _photos(folder: Path) -> list[Path]:
    """Four real photos from ../shared/data/coco-mini when it is here, else four generated pictures."""
    from PIL import Image

    data = os.environ.get("CITELINE_TEST_DATA") or Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    coco = Path(data) / "coco-mini" / "images"
    folder.mkdir()
    if coco.is_dir():
        out = []
        for src in sorted(coco.glob("*.jpg"))[:4]:
            (folder / src.name).write_bytes(src.read_bytes())
            out.append(folder / src.name)
        return out
    rng = np.random.default_rng(1)
    out = []
    for i in range(4):
        path = folder / f"photo{i}.png"
        Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(path)
        out.append(path)
    return out


def test_end_to_end_text_query_finds_a_photo_through_the_searcher(tiny_model_name: str, tmp_path: Path) -> None:
    """Ingest photos into a real KB with the tiny CLIP, then a text query reaches them through the image index:
    the Searcher's top image is the photo the same model scores highest for that text."""
    from retrieval.kb import KnowledgeBase
    from retrieval.kb_writer import KBWriter
    from retrieval.search import Searcher
    from retrieval.settings import KBSettings

    photos = _photos(tmp_path / "photos")
    torch.manual_seed(0)
    settings = KBSettings(text_model="fake", image_model=f"clip:{tiny_model_name}:none", tag_images=False)
    with KnowledgeBase.open(tmp_path / "kb", settings, writable=True) as kb:
        report = KBWriter(kb).run([str(tmp_path / "photos")])
        assert [f.status for f in report.files].count("ingested") == len(photos), report.files
        index = kb.index("image")
        assert index is not None and index.size == len(photos)
        model = kb.models.image
        for query in ("a dog on a beach", "a red bus in the street"):
            hits = Searcher(kb).search(query, retrievers=["image"], top_k=len(photos))
            assert hits and all(h.kind == "figure" and h.retrievers == {"image": i} for i, h in enumerate(hits, 1))
            assert sorted(h.doc_name for h in hits) == sorted(p.name for p in photos)  # each photo exactly once
            scores = model.embed_texts([query]) @ model.embed_images([str(p) for p in photos]).T
            best = photos[int(np.argmax(scores[0]))].name
            assert hits[0].doc_name == best
