"""Robustness of the PDF parser on the shared set of 56 real, scanned, encrypted, malformed and odd PDFs.

Every file must end as a ParsedDocument or a FileError, never another exception. The full-folder run
is `slow` (about 3-4 minutes on 2 cores, OCR dominates); the known facts below run by default.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import CorruptFile, FileError, PasswordRequired
from ingest.hashing import file_sha256
from ingest.parsers import parse_file
from ingest.protocols import ParseOptions
from ingest.types import ParsedDocument
from tests.conftest import SHARED_DATA, needs_data

PDFS = SHARED_DATA / "pdfs"
pytestmark = needs_data("pdfs")


def _manifest() -> dict[str, dict[str, Any]]:
    if not PDFS.is_dir():
        return {}
    return {e["file"]: e for e in json.loads((PDFS / "manifest.json").read_text())}


MANIFEST = _manifest()
ENCRYPTED = sorted(f for f, e in MANIFEST.items() if e.get("password"))
SCANNED = ["ocrmypdf__linn.pdf", "ocrmypdf__c02-22.pdf", "ocrmypdf__skew.pdf", "ocrmypdf__francais.pdf"]


def _parse(name: str, tmp_path: Path, passwords: tuple[str, ...] = (), ocr: bool = True) -> ParsedDocument:
    path = PDFS / name
    options = ParseOptions(assets_dir=str(tmp_path / "assets"), passwords=passwords, ocr=ocr)
    return parse_file(str(path), file_sha256(str(path)), options)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


@pytest.mark.parametrize("name", ENCRYPTED)
def test_encrypted_needs_its_password(name: str, tmp_path: Path) -> None:
    with pytest.raises(PasswordRequired):
        _parse(name, tmp_path, ocr=False)
    doc = _parse(name, tmp_path, passwords=("not-it", MANIFEST[name]["password"]), ocr=False)
    assert doc.pages


def test_decrypted_files_have_text(tmp_path: Path) -> None:
    doc = _parse("pypdf__libreoffice-writer-password.pdf", tmp_path, passwords=("openpassword",), ocr=False)
    assert len(doc.pages[0].text) > 500
    for name in ("pdfminer__rc4-40.pdf", "pdfminer__aes-256.pdf"):
        assert _parse(name, tmp_path, passwords=("foo",), ocr=False).pages[0].text.strip()


def test_invalid_file_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(CorruptFile, match="not a readable PDF"):
        _parse("ocrmypdf__invalid.pdf", tmp_path)


def test_ocr_quality_on_linn(tmp_path: Path) -> None:
    """Word-level similarity of our OCR to the ground truth; measured 0.979 (tesseract 5.3, 300 dpi)."""
    doc = _parse("ocrmypdf__linn.pdf", tmp_path)
    page = doc.pages[0]
    assert page.ocr and all(b.ocr for b in page.blocks)
    truth = (PDFS / "ocrmypdf__linn.txt").read_text(encoding="utf-8")
    ratio = difflib.SequenceMatcher(None, _words(page.text), _words(truth), autojunk=False).ratio()
    assert ratio >= 0.9, f"OCR word similarity {ratio:.3f}"


def test_odd_fonts_and_scripts(tmp_path: Path) -> None:
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", _parse("pdfminer__jo.pdf", tmp_path).pages[0].text)
    assert re.search(r"[\u0600-\u06ff]", _parse("pdfjs__ArabicCIDTrueType.pdf", tmp_path).pages[0].text)
    assert _parse("pdfminer__matplotlib.pdf", tmp_path).pages  # Type3 fonts: parses, no crash


def test_outline_and_sections(tmp_path: Path) -> None:
    doc = _parse("pypdf__pdflatex-outline.pdf", tmp_path, ocr=False)
    assert doc.outline and all(1 <= p <= len(doc.pages) for _, _, p in doc.outline)
    assert all(p.section for p in doc.pages[1:])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_every_pdf_ends_parsed_or_file_error(name: str, tmp_path: Path) -> None:
    password = MANIFEST[name].get("password")
    try:
        doc = _parse(name, tmp_path, passwords=(password,) if password else ())
    except FileError as exc:
        assert str(exc)
        assert name == "ocrmypdf__invalid.pdf", f"{name} failed: {exc}"
        return
    assert isinstance(doc, ParsedDocument) and doc.pages
    assets = tmp_path / "assets"
    for page in doc.pages:
        assert page.thumbnail is None or (assets / page.thumbnail).is_file()
        assert all((assets / f.image_path).is_file() for f in page.figures)
    if name in SCANNED or name == "ocrmypdf__cardinal.pdf":
        assert all(p.ocr and p.text.strip() for p in doc.pages), "scanned pages must be OCRed"
