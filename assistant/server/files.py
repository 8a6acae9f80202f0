"""Files at the HTTP edge: uploads (names, types, sizes, atomic saves), query images, and the paths a client may
name (uploads, ingest roots, assets); anything that could leave its folder is refused before it is touched."""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from starlette.datastructures import UploadFile

from assistant.server.bodies import ServerLimits
from ingest.formats import SUPPORTED

ASSET_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
_UNSAFE_NAME = re.compile(r"[^\w.\- ()+,]")


def check_uploads(files: list[Any], limits: ServerLimits) -> list[str]:
    """Validate every upload before anything is written: names, count, types and sizes."""
    if not files or not all(isinstance(f, UploadFile) for f in files):
        raise HTTPException(400, "send one or more files in the multipart field `files`")
    if len(files) > limits.max_files:
        raise HTTPException(400, f"at most {limits.max_files} files per upload")
    names = [safe_upload_name(f.filename or "") for f in files]
    if len(set(names)) != len(names):
        raise HTTPException(400, f"duplicate file names in one upload: {', '.join(sorted(names))}")
    for upload, name in zip(files, names, strict=True):
        if Path(name).suffix.lower() not in SUPPORTED:
            raise HTTPException(415, f"{name}: unsupported file type; supported: {' '.join(SUPPORTED)}")
        if _upload_size(upload) > limits.max_file_bytes:
            raise HTTPException(413, f"{name} is larger than the {limits.max_file_bytes} bytes allowed per file")
    return names


def safe_upload_name(raw: str, max_chars: int = 120) -> str:
    """A client file name reduced to a plain, visible file name: no folders, no `..`, no control characters."""
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    stem, suffix = os.path.splitext(name)
    name = stem[: max_chars - len(suffix)] + suffix
    if not stem.strip("._ "):
        raise HTTPException(400, f"invalid file name {raw!r}")
    return name


def _upload_size(upload: UploadFile) -> int:
    if upload.size is not None:
        return upload.size
    upload.file.seek(0, os.SEEK_END)
    size = upload.file.tell()
    upload.file.seek(0)
    return size


def save_upload(upload: UploadFile, target: Path) -> str:
    """Write atomically (a hidden part file, then rename), so a reader never sees half a file. The part file is
    new and exclusive (never an existing file or a link planted where it would go)."""
    fd, part = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        upload.file.seek(0)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(upload.file, out, 2**20)
        os.replace(part, target)
    except BaseException:
        Path(part).unlink(missing_ok=True)
        raise
    return str(target)


@contextmanager
def query_image_file(image_b64: str | None, max_bytes: int) -> Iterator[str | None]:
    """A base64 query image as a temporary file, checked to be a readable picture."""
    if image_b64 is None:
        yield None
        return
    if len(image_b64) > (max_bytes * 4) // 3 + 4:
        raise HTTPException(413, f"image_b64 is larger than the {max_bytes} bytes allowed")
    try:
        data = base64.b64decode(image_b64, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, "image_b64 is not valid base64") from None
    suffix = _image_suffix(data)
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="citeline-query-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        yield path
    finally:
        os.unlink(path)


def _image_suffix(data: bytes) -> str:
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            kind = (image.format or "png").lower()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise HTTPException(400, "image_b64 is not a readable image (PNG, JPEG, WebP, ...)") from None
    return f".{kind}"


def upload_path(root: Path, rel: str) -> Path:
    """A file or folder named by a client, relative to the uploads folder `root`; a path that is absolute,
    climbs out (`..`, also through a symlink) or is not plain text is refused before anything is touched."""
    parts = rel.replace("\\", "/").split("/")
    if not rel.strip() or "\x00" in rel or rel.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        raise HTTPException(400, f"invalid path {rel!r}: name a file or folder relative to the uploads folder "
                            "(GET /v1/documents lists them; DELETE /v1/documents/{doc_id} removes any document)")
    root = root.resolve()
    target = root / rel
    if not target.resolve().is_relative_to(root):
        raise HTTPException(400, f"invalid path {rel!r}: it leads out of the uploads folder")
    return target


def ingest_path(uploads: Path, roots: Sequence[Path], raw: str) -> str:
    """A file or folder a client asks the server to ingest: relative to the uploads folder, or absolute inside
    the uploads folder or one of `roots`; it must exist. Anything else is a 400 before a job is made."""
    if not isinstance(raw, str) or not raw.strip() or "\x00" in raw:
        raise HTTPException(400, f"invalid path {raw!r}")
    given = Path(raw).expanduser()
    if not given.is_absolute():
        if ".." in raw.replace("\\", "/").split("/"):
            raise HTTPException(400, f"invalid path {raw!r}: `..` is not allowed")
        given = uploads / given
    target = given.resolve()
    allowed = [uploads.resolve(), *(Path(r).resolve() for r in roots)]
    if not any(target.is_relative_to(root) for root in allowed):
        raise HTTPException(400, f"{raw!r} is outside the folders this server ingests from (the uploads folder"
                            f"{', ' + ', '.join(str(r) for r in allowed[1:]) if roots else ''}); upload the "
                            "files instead, or start the server with --ingest-root")
    if not target.exists():
        raise HTTPException(400, f"{raw!r}: no such file or folder on the server")
    return str(target)


def unlink_upload(root: Path, path: str) -> bool:
    """Delete `path` when it is a server-owned copy: a file (or link, never its target) whose folder lies
    inside the uploads folder `root`. Anything else is the user's and stays."""
    file = Path(path)
    if not file.parent.resolve().is_relative_to(root.resolve()) or not (file.is_symlink() or file.is_file()):
        return False
    file.unlink()
    return True


def asset_file(root: Path, rel: str) -> Path:
    """A page thumbnail or figure crop inside `root`; anything that could leave it is refused."""
    parts = rel.split("/")
    if not rel or "\x00" in rel or "\\" in rel or rel.startswith("/") or ".." in parts or ":" in parts[0]:
        raise HTTPException(400, f"invalid asset path {rel!r}: use a path relative to the assets folder")
    root = root.resolve()
    target = (root / rel).resolve()
    if not target.is_relative_to(root) or not target.is_file() or target.suffix.lower() not in ASSET_TYPES:
        raise HTTPException(404, f"no asset {rel!r}")
    return target

