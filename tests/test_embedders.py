"""One contract for every TextEmbedder and ImageEmbedder; real offline models loaded once per session."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from ingest.errors import MissingDependency
from retrieval.clip import build_image_embedder, parse_clip_spec
from retrieval.embedder_models import sha256_file, verify_sha256
from retrieval.embedders import build_text_embedder
from retrieval.errors import EmbedderChecksumError, TextQueriesUnsupported, UnknownEmbedder
from retrieval.fakes import HashEmbedder, HashImageEmbedder
from retrieval.protocols import ImageEmbedder, ImageTagger, TextEmbedder
from tests.conftest import SHARED_DATA, needs_data

COCO = SHARED_DATA / "coco-mini"
real = pytest.mark.integration

TEXT_SPECS = [
    "fake",
    pytest.param("minilm-q8", marks=real),
    pytest.param("minilm-int8", marks=real),
    pytest.param("minilm", marks=real),
]

SENTENCES = [
    "A man is eating a piece of bread.",
    "The new movie is awesome, I loved it.",
    "x",
    "Aspirin reduces the risk of heart attacks in older adults. " * 40,  # longer than max_tokens
    "A cat sleeps on the sofa.",
]


@pytest.fixture(scope="session")
def text_embedders() -> dict[str, TextEmbedder]:
    return {}


@pytest.fixture(params=TEXT_SPECS)
def text_embedder(request: pytest.FixtureRequest, text_embedders: dict[str, TextEmbedder]) -> TextEmbedder:
    spec = request.param
    if spec not in text_embedders:
        text_embedders[spec] = build_text_embedder(spec)
    return text_embedders[spec]


# --- the TextEmbedder contract -------------------------------------------------------------------


def test_satisfies_protocol(text_embedder: TextEmbedder) -> None:
    assert isinstance(text_embedder, TextEmbedder)
    assert text_embedder.name and text_embedder.dimension > 0 and text_embedder.normalized
    assert text_embedder.max_tokens > 0


def test_shape_dtype_normalised(text_embedder: TextEmbedder) -> None:
    vectors = text_embedder.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), text_embedder.dimension)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_inputs(text_embedder: TextEmbedder) -> None:
    assert text_embedder.embed([]).shape == (0, text_embedder.dimension)
    blank = text_embedder.embed([""])
    assert blank.shape == (1, text_embedder.dimension) and np.isfinite(blank).all()


def test_deterministic(text_embedder: TextEmbedder) -> None:
    np.testing.assert_allclose(text_embedder.embed(SENTENCES), text_embedder.embed(SENTENCES), atol=1e-6)


def test_order_preserved_across_length_sorting(text_embedder: TextEmbedder) -> None:
    one_by_one = np.concatenate([text_embedder.embed([s]) for s in SENTENCES])
    batched = text_embedder.embed(SENTENCES)
    reversed_ = text_embedder.embed(SENTENCES[::-1])[::-1]
    if text_embedder.name == "minilm-q8":
        # dynamic int8 quantises activations per batch, so batch neighbours nudge a vector (cosine > 0.98);
        # a row landing in the wrong place would still be caught: each row must match its own sentence best
        for other in (one_by_one, reversed_):
            sims = batched @ other.T
            assert (np.diag(sims) > 0.98).all(), np.diag(sims)
            assert (sims.argmax(axis=1) == np.arange(len(SENTENCES))).all()
        return
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4)
    np.testing.assert_allclose(reversed_, batched, atol=1e-4)


def test_paraphrase_closer_than_unrelated(text_embedder: TextEmbedder) -> None:
    query, paraphrase, unrelated = text_embedder.embed(
        ["A man is eating bread.", "A man eats a piece of bread.", "The stock market fell sharply today."]
    )
    assert query @ paraphrase > query @ unrelated + 0.1


def test_count_tokens(text_embedder: TextEmbedder) -> None:
    short = text_embedder.count_tokens("hello world")
    assert 2 <= short <= 6
    assert text_embedder.count_tokens(SENTENCES[3]) > text_embedder.max_tokens  # not truncated


# --- real-model specifics ------------------------------------------------------------------------


@real
def test_int8_agrees_with_fp32(text_embedders: dict[str, TextEmbedder]) -> None:
    for spec in ("minilm-int8", "minilm"):
        text_embedders.setdefault(spec, build_text_embedder(spec))
    int8, fp32 = text_embedders["minilm-int8"], text_embedders["minilm"]
    assert int8.max_tokens == fp32.max_tokens == 256
    cosines = (int8.embed(SENTENCES) * fp32.embed(SENTENCES)).sum(axis=1)
    assert cosines.min() > 0.95, cosines
    assert [int8.count_tokens(s) for s in SENTENCES] == [fp32.count_tokens(s) for s in SENTENCES]


@real
def test_q8_agrees_with_fp32(text_embedders: dict[str, TextEmbedder]) -> None:
    """The derived int8-compute graph is the same model: near-identical vectors, identical tokenisation."""
    for spec in ("minilm-q8", "minilm"):
        text_embedders.setdefault(spec, build_text_embedder(spec))
    q8, fp32 = text_embedders["minilm-q8"], text_embedders["minilm"]
    assert q8.name == "minilm-q8" and q8.max_tokens == fp32.max_tokens == 256
    cosines = (q8.embed(SENTENCES) * fp32.embed(SENTENCES)).sum(axis=1)
    assert cosines.min() > 0.95, cosines
    assert [q8.count_tokens(s) for s in SENTENCES] == [fp32.count_tokens(s) for s in SENTENCES]


@real
def test_q8_model_is_derived_once_and_verified(tmp_path: Path) -> None:
    from retrieval.embedder_models import minilm_q8_onnx

    path = minilm_q8_onnx(tmp_path)
    import onnx

    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "MatMulInteger" in ops and "DynamicQuantizeLinear" in ops  # integer products, not fp32
    stamp = path.stat().st_mtime_ns
    assert minilm_q8_onnx(tmp_path) == path and path.stat().st_mtime_ns == stamp  # cached, not rebuilt
    with open(path, "r+b") as f:  # a damaged cache file is caught by the digest recorded at build time
        f.seek(1000)
        f.write(b"\x00" * 16)
    with pytest.raises(EmbedderChecksumError, match="delete"):
        minilm_q8_onnx(tmp_path)


# --- factories, checksums, errors ----------------------------------------------------------------


def test_unknown_specs_list_the_choices() -> None:
    with pytest.raises(UnknownEmbedder, match="minilm-int8"):
        build_text_embedder("bert-large")
    with pytest.raises(UnknownEmbedder, match="clip:"):
        build_image_embedder("resnet")


def test_clip_spec_parsing() -> None:
    assert parse_clip_spec("ViT-B-32:openai") == ("ViT-B-32", "openai")
    assert parse_clip_spec("ViT-B-32") == ("ViT-B-32", "openai")
    assert parse_clip_spec("ViT-B-32:none") == ("ViT-B-32", None)
    assert parse_clip_spec("ViT-B-32:/tmp/a:b/ckpt.pt") == ("ViT-B-32", "/tmp/a:b/ckpt.pt")
    assert parse_clip_spec("hf-hub:timm/ViT-B-16-SigLIP") == ("hf-hub:timm/ViT-B-16-SigLIP", None)


@pytest.mark.skipif(importlib.util.find_spec("open_clip") is not None, reason="open_clip is installed")
def test_clip_without_open_clip_names_the_extra() -> None:
    with pytest.raises(MissingDependency, match=r"citeline\[clip\]"):
        build_image_embedder("clip:ViT-B-32:none")


def test_checksum_mismatch_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"not the weights")
    assert verify_sha256(path, sha256_file(path), "n/a") == path
    with pytest.raises(EmbedderChecksumError, match="reinstall"):
        verify_sha256(path, "0" * 64, "reinstall it")


# --- image embedders and the tagger --------------------------------------------------------------


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from PIL import Image

    folder = tmp_path_factory.mktemp("pictures")
    gradient = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
    arrays = [gradient, gradient[:, ::-1], np.full((48, 64), 7, np.uint8), np.full((48, 64), 200, np.uint8)]
    paths = []
    for i, array in enumerate(arrays):
        paths.append(str(folder / f"p{i}.png"))
        Image.fromarray(np.stack([array] * 3, axis=-1)).save(paths[-1])
    return paths


def test_hash_image_embedder_contract(pictures: list[str]) -> None:
    embedder = build_image_embedder("fake")
    assert isinstance(embedder, ImageEmbedder) and isinstance(embedder, HashImageEmbedder)
    vectors = embedder.embed_images(pictures)
    assert vectors.shape == (4, embedder.dimension) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] < 0  # mirrored gradients point apart
    assert not np.allclose(vectors[2], vectors[3])  # flat pictures still differ
    assert embedder.embed_images([]).shape == (0, embedder.dimension)
    with pytest.raises(TextQueriesUnsupported, match="clip"):
        embedder.embed_texts(["a cat"])


def test_hash_embedder_is_lexical() -> None:
    embedder = HashEmbedder(dimension=128)
    a, b, c = embedder.embed(["red bus in the city", "a red city bus", "protein folding kinetics"])
    assert a @ b > a @ c


def _coco_image_whose_captions_say(word: str) -> str:
    ids = {}
    for line in (COCO / "captions.jsonl").read_text().splitlines():
        row = json.loads(line)
        if word in row["caption"].lower():
            ids[row["image_id"]] = ids.get(row["image_id"], 0) + 1
    image_id = max(ids, key=lambda k: ids[k])  # the image whose 5 captions mention it most
    return str(COCO / "images" / f"{image_id:012d}.jpg")


@pytest.fixture(scope="session")
def tagger():  # type: ignore[no-untyped-def]
    return build_image_embedder("tagger")


@real
@needs_data("coco-mini")
def test_tagger_onnx_export_matches_the_torch_model(tmp_path: Path) -> None:
    """The tagger runs an ONNX export derived once from the verified torch weights: same features, same
    probabilities as the torch model it came from, and the cached export is checked against its digest."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    from retrieval.embedder_models import efficientnet_lite0_onnx, efficientnet_lite0_weights
    from retrieval.tagger import EfficientNetTagger, preprocess

    tagger = EfficientNetTagger(threads=1, cache_dir=tmp_path)
    net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
    net.load_state_dict(torch.load(efficientnet_lite0_weights(), map_location="cpu", weights_only=True))
    net.eval()
    paths = [_coco_image_whose_captions_say(w) for w in ("zebra", "pizza")]
    with torch.inference_mode():
        pooled = net.extract_features(torch.from_numpy(np.stack([preprocess(p) for p in paths]))).mean(dim=(2, 3))
        probs = torch.softmax(net._fc(pooled), dim=1).numpy()
    feats, onnx_probs = tagger._forward(paths)
    np.testing.assert_allclose(feats, pooled.numpy(), atol=1e-3)
    np.testing.assert_allclose(onnx_probs, probs, atol=1e-4)
    path = efficientnet_lite0_onnx(tmp_path)
    with open(path, "r+b") as f:
        f.seek(2000)
        f.write(b"\x00" * 16)
    with pytest.raises(EmbedderChecksumError, match="delete"):
        EfficientNetTagger(cache_dir=tmp_path)


@real
@needs_data("coco-mini")
@pytest.mark.parametrize(("caption_word", "label"), [("zebra", "zebra"), ("pizza", "pizza"), ("bus", "bus")])
def test_tagger_labels_coco_photos(tagger, caption_word: str, label: str) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(tagger, ImageTagger) and isinstance(tagger, ImageEmbedder)
    (tags,) = tagger.tag([_coco_image_whose_captions_say(caption_word)])
    assert len(tags) == 5 and all(0.0 <= p <= 1.0 for _, p in tags)
    assert [p for _, p in tags] == sorted((p for _, p in tags), reverse=True)
    assert any(label in name for name, _ in tags), tags


@real
@needs_data("coco-mini")
def test_tagger_features_group_same_category(tagger) -> None:  # type: ignore[no-untyped-def]
    zebra, pizza = _coco_image_whose_captions_say("zebra"), _coco_image_whose_captions_say("pizza")
    vectors = tagger.embed_images([zebra, pizza, zebra])
    assert vectors.shape == (3, 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-5)
    assert tagger.supports_text_queries is False
    with pytest.raises(TextQueriesUnsupported):
        tagger.embed_texts(["zebra"])


@real
def test_q8_model_in_an_unwritable_place_names_the_fix(tmp_path: Path) -> None:
    from ingest.errors import CitelineError
    from retrieval.embedder_models import minilm_q8_onnx

    blocked = tmp_path / "file-not-dir"
    blocked.write_text("a file where the cache folder should be")
    with pytest.raises(CitelineError, match="CITELINE_HOME"):
        minilm_q8_onnx(blocked / "models")
