"""Uploaded files → files on disk under `<kb>/uploads/`, validated and with safe names.

A browser sends a name (for folder uploads a relative path such as `docs/a.pdf`) and bytes. Nothing the browser
sends is trusted: every path component is cleaned, `..`, absolute paths and hidden names cannot survive, the
result is checked to lie inside the uploads folder, and the content must match its type.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from ingest.formats import IMAGE_SUFFIXES, SUPPORTED, TEXT_SUFFIXES  # the single list of file types

MAX_UPLOAD_MB = 200
IMAGE_TYPES = IMAGE_SUFFIXES
TEXT_TYPES = TEXT_SUFFIXES
UPLOAD_TYPES = tuple(s.lstrip(".") for s in SUPPORTED)
QUERY_IMAGE_TYPES = tuple(s.lstrip(".") for s in IMAGE_TYPES)
_UNSAFE = re.compile(r"[^\w.\- ()+,@]+")
_MAX_COMPONENT = 120
_MAX_DEPTH = 8


class UploadedFile(Protocol):
    """What Streamlit's `UploadedFile` offers (and what tests can fake)."""

    name: str

    def getvalue(self) -> bytes: ...


@dataclass(frozen=True)
class Rejected:
    name: str
    reason: str


@dataclass
class SavedUploads:
    saved: list[Path] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def clean_component(part: str) -> str:
    """One path component made safe: normalised, no separators or control characters, no leading dots."""
    text = unicodedata.normalize("NFKC", part)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")
    text = _UNSAFE.sub("_", text).strip(" .")
    stem, dot, suffix = text.rpartition(".")
    if dot and len(text) > _MAX_COMPONENT:  # keep the extension when shortening
        text = stem[: _MAX_COMPONENT - len(suffix) - 1] + "." + suffix
    return text[:_MAX_COMPONENT]


def sanitize_name(name: str) -> PurePosixPath:
    """A browser-supplied name or relative path → a safe relative path (folders kept, traversal dropped)."""
    parts = re.split(r"[\\/]+", name)
    clean = [clean_component(p) for p in parts if p not in ("", ".", "..")]
    clean = [p for p in clean if p and p not in (".", "..")]
    if not clean:
        return PurePosixPath("upload")
    return PurePosixPath(*clean[-_MAX_DEPTH:])


def check_content(name: str, data: bytes, max_bytes: int = MAX_UPLOAD_MB * 1024**2) -> str | None:
    """Why this upload is refused, or None when its size and type are acceptable."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in SUPPORTED:
        return f"unsupported file type '{suffix or '(none)'}' (supported: {', '.join(UPLOAD_TYPES)})"
    if not data:
        return "empty file"
    if len(data) > max_bytes:
        return f"{len(data) / 1024**2:.0f} MB is over the {max_bytes / 1024**2:.0f} MB upload limit"
    if suffix == ".pdf" and b"%PDF-" not in data[:1024]:
        return "not a PDF (no %PDF header)"
    if suffix in IMAGE_TYPES and not _is_image(data):
        return "not a readable image"
    if suffix in TEXT_TYPES and b"\x00" in data[:8192]:
        return "binary content in a text file"
    return None


def _is_image(data: bytes) -> bool:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except Exception:
        return False
    return True


def target_path(root: Path, name: str) -> Path:
    """Where an upload goes: inside `root`, never outside it (checked after resolving)."""
    root = root.resolve()
    path = (root / sanitize_name(name)).resolve()
    if not path.is_relative_to(root) or path == root:
        raise ValueError(f"unsafe upload name {name!r}")
    return path


def save_uploads(files: list[UploadedFile], root: Path, max_bytes: int = MAX_UPLOAD_MB * 1024**2) -> SavedUploads:
    """Validate and write uploads under `root`. Same name and same bytes: the existing file is reused (so
    re-ingesting it is a no-op); same name, other bytes: a numbered name is chosen."""
    out = SavedUploads()
    for file in files:
        data = file.getvalue()
        reason = check_content(file.name, data, max_bytes)
        if reason is None:
            try:
                out.saved.append(_write(target_path(root, file.name), data))
            except (ValueError, OSError) as exc:
                reason = str(exc)
        if reason is not None:
            out.rejected.append(Rejected(file.name, reason))
    return out


def _write(path: Path, data: bytes) -> Path:
    path = _free_name(path, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():  # a new, exclusive part file: never one that is there already, nor a planted link
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def _free_name(path: Path, data: bytes) -> Path:
    candidate, n = path, 1
    while candidate.exists() and candidate.read_bytes() != data:
        n += 1
        candidate = path.with_name(f"{path.stem} ({n}){path.suffix}")
    return candidate


def save_query_image(file: UploadedFile, folder: Path | None = None) -> Path:
    """A query image → a file named by its content hash (outside the KB: queries are not documents)."""
    data = file.getvalue()
    suffix = PurePosixPath(file.name).suffix.lower()
    if suffix not in IMAGE_TYPES or not _is_image(data):
        raise ValueError(f"{file.name}: not a supported image ({', '.join(QUERY_IMAGE_TYPES)})")
    folder = folder or Path(tempfile.gettempdir()) / "citeline-ui-queries"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(data).hexdigest()[:20] + suffix)
    if not path.exists():
        path.write_bytes(data)
    return path
