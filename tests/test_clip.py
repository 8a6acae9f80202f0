"""OpenClipEmbedder through open_clip's real loading code, with a tiny config and random weights.

Runs in the clip venv (open_clip needs torchvision); the main venv skips it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

open_clip = pytest.importorskip("open_clip")
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
