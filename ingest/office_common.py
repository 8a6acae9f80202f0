"""What the Office, e-book and mail parsers share: safe opening of OOXML zips, password-protected files,
Markdown tables, spreadsheet cell names, and embedded images saved as figures through the image path.

OOXML files (DOCX, XLSX, PPTX) and EPUB are zip archives: each is checked before any library reads it, so a
zip bomb is refused from its directory alone. A password-protected Office file is not a zip but an OLE
compound file holding an `EncryptedPackage` stream; it is decrypted with the passwords the user gave
(msoffcrypto-tool) or refused with a message that says what to do. Macros in .docm/.xlsm/.pptm are never
executed: the libraries read XML parts only and the VBA project is ignored.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Callable
from typing import IO, TypeVar

from ingest.errors import (
    CorruptFile,
    FileError,
    PasswordRequired,
    ResourceLimit,
    is_out_of_memory,
    out_of_memory,
)
from ingest.protocols import ParseOptions
from ingest.types import BBox, Figure, ParsedDocument

MAX_UNZIPPED_BYTES = 512 * 1024**2  # all members together, as the zip directory declares them
MAX_RATIO = 200  # a member that inflates more than this (and past 10 MB) is a bomb
MAX_MEMBERS = 20_000
MACRO_SUFFIXES = (".docm", ".xlsm", ".pptm")
MACRO_NOTE = "macro-enabled file: read as data, macros never executed"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")


def open_office_zip(path: str, options: ParseOptions, what: str) -> IO[bytes]:
    """The file as a checked zip stream (decrypted in memory when it was password-protected)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            fh.seek(0)
            data = fh.read() if head == _OLE_MAGIC else b""
    except OSError as exc:
        raise CorruptFile(f"{path}: cannot be read ({exc})") from exc
    stream: IO[bytes]
    stream = (io.BytesIO(_decrypt(path, data, options.passwords, what)) if head == _OLE_MAGIC
              else open(path, "rb"))  # noqa: SIM115 - handed to the caller, closed by it
    check_zip(path, stream, what)
    stream.seek(0)
    return stream


def _decrypt(path: str, data: bytes, passwords: tuple[str, ...], what: str) -> bytes:
    if _ENCRYPTED not in data:
        raise CorruptFile(f"{path}: a legacy binary Office file (OLE), not {what}; save it as {what} and re-ingest")
    if not passwords:
        raise FileError(f"{path}: password-protected Office file: remove the password and re-ingest "
                        "(or pass it with --password PW)")
    import msoffcrypto

    for password in passwords:
        try:
            office = msoffcrypto.OfficeFile(io.BytesIO(data))
            office.load_key(password=password)
            out = io.BytesIO()
            office.decrypt(out)
            return out.getvalue()
        except Exception:  # msoffcrypto raises InvalidKeyError (and others on damaged headers)
            continue
    raise PasswordRequired(path, tried=len(passwords))


def check_zip(path: str, stream: IO[bytes], what: str) -> None:
    """Refuse a damaged archive or a decompression bomb before any member is inflated."""
    try:
        with zipfile.ZipFile(stream) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        kind = what.removeprefix("an ").removeprefix("a ")
        raise CorruptFile(f"{path}: not a readable {kind} (damaged zip: {exc}); re-save it") from exc
    if len(infos) > MAX_MEMBERS:
        raise ResourceLimit(f"{path}: {len(infos):,} archive members exceed the limit of {MAX_MEMBERS:,}")
    total = sum(i.file_size for i in infos)
    bomb = next((i for i in infos if i.file_size > 10 * 1024**2
                 and i.file_size > MAX_RATIO * max(1, i.compress_size)), None)
    if total > MAX_UNZIPPED_BYTES or bomb is not None:
        detail = f"member {bomb.filename} inflates {bomb.file_size // max(1, bomb.compress_size):,}x" if bomb \
            else f"{total / 1e6:,.0f} MB unpacked"
        raise ResourceLimit(f"{path}: a possible zip bomb ({detail}; limit {MAX_UNZIPPED_BYTES / 1e6:.0f} MB, "
                            f"{MAX_RATIO}x); the file was not unpacked")


def macro_warning(path: str) -> dict[str, str]:
    return {"macros": MACRO_NOTE} if os.path.splitext(path)[1].lower() in MACRO_SUFFIXES else {}


def markdown_table(rows: list[list[str]]) -> str:
    """Rows as a Markdown pipe table, first row the header (the form PDF tables take, so chunking agrees)."""
    width = max((len(r) for r in rows), default=0)
    if not width:
        return ""
    norm = [[" ".join(c.replace("|", "/").split()) for c in r] + [""] * (width - len(r)) for r in rows]
    out = ["| " + " | ".join(norm[0]) + " |", "|" + "---|" * width]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in norm[1:]])


def column_letter(index: int) -> str:
    """1 → A, 27 → AA."""
    out = ""
    while index > 0:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


def cell_range(sheet: str, bbox: BBox) -> str:
    """A sheet chunk's bbox (cell grid units: column and row offsets, A1 = 0,0,1,1) as `Sheet!B4:F9`."""
    first = f"{column_letter(int(bbox.x0) + 1)}{int(bbox.y0) + 1}"
    last = f"{column_letter(int(bbox.x1))}{int(bbox.y1)}"
    quoted = f"'{sheet}'" if any(ch in sheet for ch in " !'-") else sheet
    return f"{quoted}!{first}" + (f":{last}" if last != first else "")


def save_figure(data: bytes, doc_id: str, name: str, bbox: BBox, options: ParseOptions,
                caption: str = "") -> Figure | None:
    """An embedded image as a figure: decoded under the pixel bound, saved under the KB's assets, OCR'd.
    None for decorative images (smaller than min_figure_px) and for formats Pillow cannot read (EMF, WMF)."""
    from PIL import Image

    from ingest.images import _ocr, _to_rgb, save_copy
    from ingest.ocr import ocr_blocks

    Image.MAX_IMAGE_PIXELS = options.max_image_pixels
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > options.max_image_pixels:
                raise ResourceLimit(f"embedded image {name}: more than {options.max_image_pixels:,} pixels, "
                                    "a possible decompression bomb")
            if min(im.width, im.height) < options.min_figure_px:
                return None
            fmt = im.format or ""
            frame = _to_rgb(im, Image)
    except ResourceLimit:
        raise
    except Exception:  # an unreadable or vector image: the document is still read, without this figure
        return None
    rel, saved, (width, height) = save_copy(frame, fmt, f"{doc_id}/{name}", options.assets_dir)
    text = " ".join(b.text.replace("\n", " ") for b in ocr_blocks(_ocr(frame, options), min_confidence=60.0)) \
        if options.ocr else ""
    return Figure(bbox=bbox, image_path=rel, sha256=hashlib.sha256(saved).hexdigest(), width=width,
                  height=height, ocr_text=text, caption=caption)


T = TypeVar("T")


class GuardedParser:
    """A parser of a zipped format (OOXML, EPUB) whose `_parse` runs guarded: a library's exception on a damaged
    file becomes a CorruptFile naming the format (`what`)."""

    suffixes: tuple[str, ...]
    what: str  # "a Word document", "a slide deck", ...

    def parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        return guarded(path, self.what, lambda: self._parse(path, sha256, options))

    def _parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        raise NotImplementedError


def guarded(path: str, what: str, fn: Callable[[], T]) -> T:
    """Run a parse; turn a library's exception on a damaged file into a CorruptFile that names the format."""
    try:
        return fn()
    except FileError:
        raise
    except Exception as exc:  # python-docx/openpyxl/python-pptx raise KeyError, ValueError, lxml errors ...
        if is_out_of_memory(exc):  # the worker's address-space bound, not a damaged file
            raise out_of_memory(path) from exc
        raise CorruptFile(f"{path}: cannot be read as {what} ({type(exc).__name__}: {exc}); re-save it") from exc
