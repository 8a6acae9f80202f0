"""Legacy binary Office (.doc, .xls, .ppt) and OpenDocument (.odt, .ods, .odp) files: converted once by
LibreOffice (in a profile with macros disabled) to DOCX, XLSX or PPTX, then read by that format's parser, so
they get the same pages, sections, cell ranges and slide boxes. Without LibreOffice they are a clear error
that says what to install or how to re-save. A password-protected legacy file is refused the same way as
an OOXML one (LibreOffice would wait for a password that headless mode can never type).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import replace

from ingest import office_render as render
from ingest.errors import CorruptFile, FileError, ResourceLimit
from ingest.formats import LEGACY_SUFFIXES
from ingest.protocols import ParseOptions, ParserLookup
from ingest.types import ParsedDocument

TARGETS = {".doc": "docx", ".odt": "docx", ".rtf": "docx", ".xls": "xlsx", ".ods": "xlsx", ".ppt": "pptx",
           ".odp": "pptx"}
MAX_LEGACY_BYTES = 200_000_000
_INSTALL = "apt-get install libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui"


class LegacyOfficeParser:
    suffixes: tuple[str, ...] = LEGACY_SUFFIXES

    def __init__(self, parsers: ParserLookup) -> None:
        self.parsers = parsers  # reads the converted file

    def parse(self, path: str, sha256: str, options: ParseOptions) -> ParsedDocument:
        suffix = os.path.splitext(path)[1].lower()
        target = TARGETS[suffix]
        if render.soffice() is None:
            raise FileError(f"{path}: {suffix} files are read through LibreOffice, which is not installed: run "
                            f"`{_INSTALL}`, or save the file as .{target}")
        if os.path.getsize(path) > MAX_LEGACY_BYTES:
            raise ResourceLimit(f"{path}: over the {MAX_LEGACY_BYTES / 1e6:.0f} MB limit for converted files")
        with open(path, "rb") as fh:
            data = fh.read()
        _refuse_encrypted(path, data)
        converted = render.convert(io.BytesIO(data), suffix, target)
        if not converted:
            raise CorruptFile(f"{path}: LibreOffice could not convert it to .{target} (damaged, or took longer "
                              f"than {render.RENDER_TIMEOUT_S:.0f} s); re-save it as .{target}")
        doc = _parse_as(self.parsers, converted, target, sha256, options)
        meta = {**doc.metadata, "converted_from": suffix.lstrip("."), "converter": "libreoffice"}
        return replace(doc, path=path, metadata=meta,
                       title=doc.title if doc.title != "document" else os.path.splitext(os.path.basename(path))[0])


def _parse_as(parsers: ParserLookup, data: bytes, target: str, sha256: str, options: ParseOptions) -> ParsedDocument:
    parser = parsers("x." + target)
    assert parser is not None
    with tempfile.TemporaryDirectory(prefix="citeline-legacy-") as tmp:
        converted = os.path.join(tmp, "document." + target)
        with open(converted, "wb") as fh:
            fh.write(data)
        # the converted file's figures and thumbnails belong to the original's doc_id (same sha256)
        return parser.parse(converted, sha256 or hashlib.sha256(data).hexdigest(), options)


def _refuse_encrypted(path: str, data: bytes) -> None:
    if not data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return
    import msoffcrypto

    try:
        encrypted = msoffcrypto.OfficeFile(io.BytesIO(data)).is_encrypted()
    except Exception:  # not a format msoffcrypto knows: let LibreOffice judge it
        return
    if encrypted:
        raise FileError(f"{path}: password-protected Office file: remove the password and re-ingest")
