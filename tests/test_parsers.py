"""Fast unit tests for the ingest parsers on PDFs, images and text files generated in tmp_path."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import pymupdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from ingest.errors import CorruptFile, PasswordRequired, ResourceLimit, UnsupportedFile
from ingest.hashing import file_sha256
from ingest.ocr import OcrLine, _unrotate_line, ocr_blocks, parse_tsv
from ingest.parsers import SUPPORTED_SUFFIXES, parse_file, parser_for
from ingest.pdf import clean_text
from ingest.protocols import ParseOptions
from ingest.types import ParsedDocument, doc_id_for

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)

BODY = (
    "The Aurora X2 is a compact field camera. Its battery lasts 18 hours of continuous recording "
    "in eco mode and 11 hours in performance mode."
)


def _options(tmp_path: Path, **kw: object) -> ParseOptions:
    return ParseOptions(assets_dir=str(tmp_path / "assets"), **kw)  # type: ignore[arg-type]


def _parse(path: Path, options: ParseOptions) -> ParsedDocument:
    return parse_file(str(path), file_sha256(str(path)), options)


def _text_png(lines: list[str], size: tuple[int, int] = (1200, 500), font_size: int = 40) -> bytes:
    im = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(im)
    font = ImageFont.load_default(size=font_size)
    for i, line in enumerate(lines):
        draw.text((40, 40 + i * int(font_size * 1.6)), line, fill="black", font=font)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _chart_png() -> bytes:
    im = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(im)
    for i, h in enumerate((120, 200, 80)):
        draw.rectangle((60 + i * 110, 280 - h, 130 + i * 110, 280), fill=(40 + i * 60, 90, 200))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _draw_table(page: pymupdf.Page, rows: list[list[str]], x0: float, y0: float) -> None:
    widths, height = 150.0, 20.0
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            rect = pymupdf.Rect(
                x0 + c * widths, y0 + r * height, x0 + (c + 1) * widths, y0 + (r + 1) * height
            )
            page.draw_rect(rect, color=(0, 0, 0), width=0.7)
            page.insert_text((rect.x0 + 4, rect.y1 - 6), cell, fontsize=10)


@pytest.fixture()
def manual_pdf(tmp_path: Path) -> Path:
    doc = pymupdf.open()
    doc.set_metadata({"title": "Aurora X2 Manual", "author": "Citeline Tests"})
    page = doc.new_page()
    page.insert_text((72, 80), "Battery and Power", fontsize=20)
    page.insert_textbox(pymupdf.Rect(72, 100, 540, 160), BODY, fontsize=10)
    _draw_table(
        page,
        [["Mode", "Battery life", "Weight"], ["Eco", "18 h", "410 g"], ["Performance", "11 h", "410 g"]],
        72,
        180,
    )
    page.insert_image(pymupdf.Rect(150, 300, 450, 525), stream=_chart_png())
    page.insert_text((150, 545), "Figure 1. Battery life by mode.", fontsize=9)
    page2 = doc.new_page()
    page2.insert_textbox(
        pymupdf.Rect(72, 72, 540, 200), "Charging takes two hours with the bundled adapter.", fontsize=10
    )
    path = tmp_path / "manual.pdf"
    doc.set_toc([[1, "Battery and Power", 1]])
    doc.save(path)
    return path


def test_pdf_text_heading_table_figure_caption(manual_pdf: Path, tmp_path: Path) -> None:
    options = _options(tmp_path, ocr=False)
    doc = _parse(manual_pdf, options)
    assert doc.kind == "pdf" and doc.title == "Aurora X2 Manual" and doc.author == "Citeline Tests"
    assert doc.outline == ((1, "Battery and Power", 1),)
    page = doc.pages[0]
    kinds = {b.kind for b in page.blocks}
    assert {"heading", "text", "table", "caption"} <= kinds
    assert page.blocks[0].kind == "heading" and page.blocks[0].text == "Battery and Power"
    assert "18 hours" in page.text
    table = next(b for b in page.blocks if b.kind == "table")
    assert table.text.splitlines()[0] == "| Mode | Battery life | Weight |"
    assert "| Eco | 18 h | 410 g |" in table.text
    assert sum("Performance" in b.text for b in page.blocks) == 1, "table text must not be duplicated"
    assert len(page.figures) == 1
    fig = page.figures[0]
    assert fig.caption.startswith("Figure 1. Battery life")
    assert fig.image_path == f"{doc_id_for(doc.sha256)}/p0001-fig1.jpg"
    assert (Path(options.assets_dir) / fig.image_path).is_file()
    assert (
        page.thumbnail == f"{doc.doc_id}/p0001.jpg" and (Path(options.assets_dir) / page.thumbnail).is_file()
    )
    assert doc.pages[1].section == "Battery and Power"


def test_a_grid_of_numbers_and_symbols_is_not_a_table(tmp_path: Path) -> None:
    """Plot axes and labelled diagrams are ruled grids too; with no word in them they stay plain text."""
    doc = pymupdf.open()
    page = doc.new_page()
    _draw_table(page, [["0", "x1"], ["-2 2", "4 6"]], 72, 100)
    _draw_table(page, [["Year", "Sales"], ["2019", "4.2"]], 72, 300)
    path = tmp_path / "grids.pdf"
    doc.save(path)
    parsed = _parse(path, _options(tmp_path, ocr=False))
    tables = [b.text for b in parsed.pages[0].blocks if b.kind == "table"]
    assert tables == ["| Year | Sales |\n|---|---|\n| 2019 | 4.2 |"]
    assert "-2 2" in parsed.pages[0].text and "x1" in parsed.pages[0].text  # the axis labels are kept as text


def test_pdf_encrypted(tmp_path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Confidential: the launch date is 14 March.", fontsize=11)
    path = tmp_path / "locked.pdf"
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="s3cret", owner_pw="owner-pw")
    with pytest.raises(PasswordRequired, match="--password"):
        _parse(path, _options(tmp_path))
    with pytest.raises(PasswordRequired, match="none of the given passwords"):
        _parse(path, _options(tmp_path, passwords=("wrong",)))
    parsed = _parse(path, _options(tmp_path, passwords=("wrong", "s3cret")))
    assert "launch date is 14 March" in parsed.pages[0].text


def test_pdf_corrupt_and_limits(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.7\n%%EOF\n")
    with pytest.raises(CorruptFile, match="not a readable PDF"):
        _parse(bad, _options(tmp_path))
    doc = pymupdf.open()
    for _ in range(3):
        doc.new_page()
    many = tmp_path / "many.pdf"
    doc.save(many)
    with pytest.raises(ResourceLimit, match="max_pages"):
        _parse(many, _options(tmp_path, max_pages=2))


def test_pdf_huge_page_renders_bounded(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=14400, height=14400)
    page.insert_text((100, 200), "A poster sized page " * 3, fontsize=60)
    path = tmp_path / "poster.pdf"
    doc.save(path)
    options = _options(tmp_path, max_image_pixels=1_000_000)
    parsed = _parse(path, options)
    thumb = Image.open(Path(options.assets_dir) / str(parsed.pages[0].thumbnail))
    assert thumb.width * thumb.height <= 1_000_000


def test_pdf_repeated_logo_is_not_a_figure(tmp_path: Path) -> None:
    doc = pymupdf.open()
    logo = _chart_png()
    xref = 0
    for i in range(3):
        page = doc.new_page()
        page.insert_text(
            (72, 72), f"Page {i + 1} of the quarterly report with enough text to be a text page."
        )
        xref = page.insert_image(pymupdf.Rect(300, 300, 500, 450), stream=logo, xref=xref)
    path = tmp_path / "logo.pdf"
    doc.save(path)
    parsed = _parse(path, _options(tmp_path, ocr=False))
    assert all(not p.figures for p in parsed.pages)


def test_pdf_running_headers_and_footers_are_dropped(tmp_path: Path) -> None:
    doc = pymupdf.open()
    for i in range(4):
        page = doc.new_page(width=595, height=842)
        page.insert_text((72, 40), "ACME Corp. Annual Report 2024", fontsize=9)  # running header
        page.insert_text((72, 360), f"Body text of page {i + 1}: revenue in region {i} grew by {10 + i} percent.")
        page.insert_text((280, 815), f"Page {i + 1} of 4", fontsize=9)  # running footer (number varies)
    page = doc[0]
    path = tmp_path / "running.pdf"
    doc.save(path)
    parsed = _parse(path, _options(tmp_path, ocr=False))
    texts = [b.text for p in parsed.pages for b in p.blocks]
    assert not any("ACME Corp" in t or " of 4" in t for t in texts), texts
    assert sum("Body text of page" in t for t in texts) == 4  # the content itself stays


def test_pdf_margin_text_on_too_few_pages_is_kept(tmp_path: Path) -> None:
    doc = pymupdf.open()
    for i in range(4):
        page = doc.new_page(width=595, height=842)
        page.insert_text((72, 360), f"Body text of page {i + 1} with a sentence about the harbour.")
        if i < 2:  # the same margin note twice is not a running header
            page.insert_text((72, 40), "Draft for review", fontsize=9)
    path = tmp_path / "notes.pdf"
    doc.save(path)
    parsed = _parse(path, _options(tmp_path, ocr=False))
    assert sum("Draft for review" in b.text for p in parsed.pages for b in p.blocks) == 2


@needs_tesseract
def test_pdf_image_only_page_is_ocred(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page()
    png = _text_png(["Warranty covers two years", "of parts and labour."], size=(1600, 400), font_size=56)
    page.insert_image(page.rect, stream=png)
    path = tmp_path / "scan.pdf"
    doc.save(path)
    parsed = _parse(path, _options(tmp_path))
    page0 = parsed.pages[0]
    assert page0.ocr and all(b.ocr for b in page0.blocks)
    assert "Warranty covers two years" in page0.text
    block = page0.blocks[0]
    assert 0 <= block.bbox.x0 < block.bbox.x1 <= page0.width, "OCR boxes are in PDF points"
    no_ocr = _parse(path, _options(tmp_path, ocr=False))
    assert no_ocr.pages[0].text == "" and not no_ocr.pages[0].ocr


@needs_tesseract
def test_images_png_gif_and_multiframe_tiff(tmp_path: Path) -> None:
    png = Image.open(io.BytesIO(_text_png(["Aurora X2 battery: 18 hours"])))
    png.save(tmp_path / "note.png")
    png.save(tmp_path / "note.gif")
    png.save(tmp_path / "scan.tiff", save_all=True, append_images=[png, Image.new("L", (200, 100), 255)])
    options = _options(tmp_path)
    for name in ("note.png", "note.gif"):
        doc = _parse(tmp_path / name, options)
        page = doc.pages[0]
        assert doc.kind == "image" and (page.width, page.height) == (1200.0, 500.0)
        assert "Aurora X2 battery" in page.text and page.ocr
        assert page.figures[0].bbox.as_list() == [0, 0, 1200, 500]
        assert (Path(options.assets_dir) / page.figures[0].image_path).is_file()
    tiff = _parse(tmp_path / "scan.tiff", options)
    assert [p.number for p in tiff.pages] == [1, 2, 3]
    assert "18 hours" in tiff.pages[1].text and tiff.pages[2].text == ""


def test_images_downscaled_copy_and_errors(tmp_path: Path) -> None:
    Image.new("RGB", (3200, 800), "white").save(tmp_path / "wide.jpg")
    options = _options(tmp_path, ocr=False)
    fig = _parse(tmp_path / "wide.jpg", options).pages[0].figures[0]
    assert (fig.width, fig.height) == (1600, 400) and fig.image_path.endswith(".jpg")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    with pytest.raises(CorruptFile):
        _parse(tmp_path / "broken.png", options)
    Image.new("L", (2000, 2000)).save(tmp_path / "bomb.png")
    with pytest.raises(ResourceLimit, match="decompression bomb"):
        _parse(tmp_path / "bomb.png", _options(tmp_path, max_image_pixels=1_000_000))


def test_markdown_html_and_plain_text(tmp_path: Path) -> None:
    md = tmp_path / "notes.md"
    md.write_text("# Aurora X2 notes\n\nFirst paragraph\ncontinues here.\n\n## Battery\n\nLasts 18 hours.\n")
    doc = _parse(md, _options(tmp_path))
    blocks = doc.pages[0].blocks
    assert doc.title == "Aurora X2 notes" and doc.kind == "text"
    assert [(b.kind, b.text) for b in blocks] == [
        ("heading", "Aurora X2 notes"),
        ("text", "First paragraph\ncontinues here."),
        ("heading", "Battery"),
        ("text", "Lasts 18 hours."),
    ]
    assert (blocks[1].bbox.y0, blocks[1].bbox.y1) == (2, 3), "bbox carries source line numbers"
    html = tmp_path / "page.html"
    html.write_text(
        "<html><head><title>Spec sheet</title><style>p{color:red}</style></head><body>"
        "<h2>Power</h2><p>Battery &amp; charger</p><script>var x = 1;</script><p>USB-C</p></body></html>"
    )
    hdoc = _parse(html, _options(tmp_path))
    assert hdoc.title == "Spec sheet"
    assert [(b.kind, b.text) for b in hdoc.pages[0].blocks] == [
        ("heading", "Power"),
        ("text", "Battery & charger"),
        ("text", "USB-C"),
    ]
    latin = tmp_path / "old.txt"
    latin.write_bytes("Caf\xe9 menu\n\nSecond".encode("latin-1"))
    assert _parse(latin, _options(tmp_path)).pages[0].blocks[0].text == "Café menu"


def test_registry(tmp_path: Path) -> None:
    assert {".pdf", ".png", ".tiff", ".md", ".html"} <= SUPPORTED_SUFFIXES
    assert parser_for("x.PDF") is not None and parser_for("x.DOCX") is not None and parser_for("x.wpd") is None
    odd = tmp_path / "x.wpd"  # WordPerfect: not read
    odd.write_bytes(b"\xffWPC")
    with pytest.raises(UnsupportedFile, match="supported:"):
        _parse(odd, _options(tmp_path))


def test_tsv_parsing_rotation_and_cleaning() -> None:
    header = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext"
    rows = [
        "5\t1\t1\t1\t1\t1\t10\t20\t30\t10\t95.0\tHello",
        "5\t1\t1\t1\t1\t2\t45\t21\t30\t10\t85.0\tworld",
        "5\t1\t2\t1\t1\t1\t10\t80\t5\t5\t10.0\t~",
    ]
    lines = parse_tsv("\n".join([header, *rows]))
    assert lines[0] == OcrLine("Hello world", (10, 20, 75, 31), 90.0, 1, 1)
    blocks = ocr_blocks(lines, scale=0.5)
    assert len(blocks) == 1 and blocks[0].bbox.as_list() == [5, 10, 37.5, 15.5] and blocks[0].ocr
    # a box found on an image turned 90 degrees clockwise maps back to the original 100x50 image
    turned = OcrLine("x", (40, 10, 50, 20), 90.0)
    assert _unrotate_line(turned, 90, (100, 50)).bbox == (10, 0, 20, 10)
    assert clean_text("ab\x03\x04c\ufffd") == "abc"


def test_make_samples_is_deterministic_and_answerable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    script = Path(__file__).parents[1] / "scripts" / "make_samples.py"
    spec = importlib.util.spec_from_file_location("make_samples", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_samples", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    first = module.make_samples(tmp_path / "a")
    second = module.make_samples(tmp_path / "b")
    assert [file_sha256(str(p)) for p in first] == [file_sha256(str(p)) for p in second]
    manual = _parse(tmp_path / "a" / "aurora_x2_manual.pdf", _options(tmp_path, ocr=False))
    page = manual.pages[0]
    assert "battery life is up to 18 hours" in page.text and page.section == "Battery and Power"
    assert any(b.kind == "table" for b in page.blocks) and page.figures[0].caption.startswith("Figure 1.")
