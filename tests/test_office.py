"""Office documents, spreadsheets, slide decks and mail: real files written by python-docx, openpyxl,
python-pptx and the standard `email` package, parsed by the real parsers (in the real worker process where the
ingest runs), chunked, searched and answered with verified citations to the right page, slide or cell range."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from assistant.answer import AnswerSettings
from assistant.config import Settings
from assistant.sdk import Citeline
from ingest.attachments import parse_family
from ingest.chunking import Chunker
from ingest.errors import CorruptFile, FileError, PasswordRequired, ResourceLimit
from ingest.formats import SUPPORTED
from ingest.office_common import cell_range
from ingest.office_docx import DocxParser
from ingest.office_epub import EpubParser
from ingest.office_legacy import LegacyOfficeParser
from ingest.office_mail import MailParser
from ingest.office_sheets import CsvParser, XlsxParser
from ingest.office_slides import PptxParser
from ingest.parsers import SUPPORTED_SUFFIXES, parse_file, parser_for
from ingest.protocols import ParseOptions
from ingest.types import BBox, Chunk, ParsedDocument
from retrieval.settings import KBSettings

SHA = "ab" * 32


def opts(tmp: Path, **kw: Any) -> ParseOptions:
    """Parser options; LibreOffice rendering off unless a test asks for it (the no-renderer citations)."""
    return ParseOptions(assets_dir=str(tmp / "assets"), **{"ocr": False, "render_office": False, **kw})


def png(size: tuple[int, int] = (240, 160), color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def text_png(text: str) -> bytes:
    """A picture of black words on white, big enough for tesseract."""
    from PIL import Image, ImageDraw, ImageFont

    im = Image.new("RGB", (900, 140), "white")
    font = ImageFont.load_default(size=48)
    ImageDraw.Draw(im).text((20, 40), text, fill="black", font=font)
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


# -- file builders (the libraries' own writers) -------------------------------------------------------------
def make_docx(path: Path, *, picture: bytes | None = None) -> Path:
    import docx

    d = docx.Document()
    d.core_properties.title = "Field trial report"
    d.core_properties.author = "Dana Reyes"
    d.add_heading("Field trial report", 0)
    d.add_heading("Results", 1)
    d.add_heading("Costs", 2)
    p = d.add_paragraph("Costs rose in the third quarter because freight prices doubled.")
    d.add_comment(p.runs, text="Check the freight invoices before publishing.", author="Alice")
    table = d.add_table(rows=3, cols=3)
    for r, row in enumerate([("Site", "Sensor", "Uptime"), ("Oslo", "Model K7", "99.2%"),
                             ("Lagos", "Model Q3", "97.5%")]):
        for c, value in enumerate(row):
            table.rows[r].cells[c].text = value
    d.add_page_break()
    d.add_heading("Outlook", 1)
    d.add_paragraph("The next trial starts in spring in the Atacama desert.")
    if picture is not None:
        d.add_picture(io.BytesIO(picture))
        d.add_paragraph("Figure 1: the sensor mast at the Oslo site.")
    d.save(str(path))
    _add_footnote(path)
    return path


def _add_footnote(path: Path) -> None:
    """python-docx cannot write footnotes; add the part Word writes (word/footnotes.xml) with the zip module."""
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    notes = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:footnotes xmlns:w="{w}">'
             '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>'
             '<w:footnote w:id="1"><w:p><w:r><w:t>Freight figures are from the carrier\'s invoices.</w:t></w:r>'
             '</w:p></w:footnote></w:footnotes>')
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    ref = '<w:r><w:footnoteReference w:id="1"/></w:r></w:p>'
    body = members["word/document.xml"].decode()
    at = body.index("freight prices doubled.")
    body = body[:at] + body[at:].replace("</w:p>", ref, 1)
    members["word/document.xml"] = body.encode()
    members["[Content_Types].xml"] = members["[Content_Types].xml"].replace(
        b"</Types>", b'<Override PartName="/word/footnotes.xml" ContentType="application/vnd.openxmlformats-'
                     b'officedocument.wordprocessingml.footnotes+xml"/></Types>')
    members["word/_rels/document.xml.rels"] = members["word/_rels/document.xml.rels"].replace(
        b"</Relationships>", b'<Relationship Id="rIdFn1" Type="http://schemas.openxmlformats.org/officeDocument/'
                             b'2006/relationships/footnotes" Target="footnotes.xml"/></Relationships>')
    members["word/footnotes.xml"] = notes.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def make_xlsx(path: Path, *, big_rows: int = 0) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Budget"
    ws["A1"] = "FY2026 budget of the Harbor project"
    ws.append([])
    ws.append(["Item", "Q1", "Q2", "Share"])
    ws.append(["Freight", 1234.5, 2000, 0.125])
    ws.append(["Catering", 980, 1000, 0.375])
    ws["B4"].number_format = "#,##0.00"
    ws["D4"].number_format = "0.0%"
    ws["D5"].number_format = "0.0%"
    ws["A7"], ws["B7"] = "Period", "Half year"
    ws.merge_cells("B7:C7")
    ws.append(["Label", 1, 2])
    secret = wb.create_sheet("Codes")
    secret.sheet_state = "hidden"
    secret.append(["Room", "Door code"])
    secret.append(["Cold lab", "XK-42"])
    secret.append(["Server room", "QZ-17"])
    if big_rows:
        log = wb.create_sheet("Log")
        log.append(["Day", "Reading"])
        for i in range(1, big_rows + 1):
            log.append([f"day {i}", i * 3])
    wb.save(str(path))
    return path


def make_pptx(path: Path, *, picture: bytes | None = None) -> Path:
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    s1 = deck.slides.add_slide(deck.slide_layouts[1])
    s1.shapes.title.text = "Launch plan"
    s1.placeholders[1].text = "Ship the beta in May\nHire two engineers"
    s1.notes_slide.notes_text_frame.text = "The launch party is held on the rooftop terrace of the Lumen building."
    s2 = deck.slides.add_slide(deck.slide_layouts[5])
    s2.shapes.title.text = "Pricing"
    table = s2.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, (a, b) in enumerate([("Plan", "Monthly price"), ("Basic", "9 USD"), ("Pro", "29 USD")]):
        table.cell(r, 0).text, table.cell(r, 1).text = a, b
    if picture is not None:
        s2.shapes.add_picture(io.BytesIO(picture), Inches(6.5), Inches(5), Inches(3), Inches(1))
    deck.save(str(path))
    return path


def make_eml(path: Path, attachments: list[tuple[str, bytes, str]]) -> Path:
    msg = EmailMessage()
    msg["From"] = "Priya Natarajan <priya@example.org>"
    msg["To"] = "Board <board@example.org>"
    msg["Date"] = "Tue, 03 Mar 2026 09:30:00 +0000"
    msg["Subject"] = "Warehouse inspection results"
    msg.set_content("Hello all,\n\nThe inspection went well. The details are in the attached report.\n\nPriya")
    for name, data, mime in attachments:
        main, sub = mime.split("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    path.write_bytes(bytes(msg))
    return path


def chunks_of(doc: ParsedDocument) -> list[Chunk]:
    return Chunker().chunk(doc)


# -- the file-type lists agree ---------------------------------------------------------------------------------
def test_every_listed_suffix_has_a_parser_and_every_parser_is_listed():
    office = {".docx", ".docm", ".xlsx", ".xlsm", ".csv", ".tsv", ".pptx", ".pptm", ".eml", ".mbox", ".msg", ".epub",
              ".doc", ".xls", ".ppt", ".odt", ".ods", ".odp", ".rtf"}
    assert office <= SUPPORTED_SUFFIXES
    assert set(SUPPORTED) == set(SUPPORTED_SUFFIXES)  # discovery (CLI, UI uploads, HTTP) = the parser registry


# -- DOCX ----------------------------------------------------------------------------------------------------
def test_docx_paragraphs_headings_table_comment_footnote_and_pages(tmp_path: Path):
    doc = DocxParser().parse(str(make_docx(tmp_path / "r.docx")), SHA, opts(tmp_path))
    assert (doc.kind, doc.title, doc.author) == ("docx", "Field trial report", "Dana Reyes")
    assert doc.metadata["citation"] == "section+paragraph" and doc.metadata["pagination"] == "hard-breaks"
    assert len(doc.pages) == 2  # cut at the hard page break
    assert [(lvl, t) for lvl, t, _ in doc.outline] == [(1, "Field trial report"), (1, "Results"), (2, "Costs"),
                                                      (1, "Outlook")]
    chunks = chunks_of(doc)
    table = next(c for c in chunks if c.kind == "table")
    assert table.text.splitlines()[0] == "| Site | Sensor | Uptime |" and "| Oslo | Model K7 | 99.2% |" in table.text
    assert (table.page, table.section) == (1, "Results › Costs")
    costs = next(c for c in chunks if "freight prices doubled" in c.text)
    assert "[Comment by Alice] Check the freight invoices" in costs.text
    assert "[Footnote] Freight figures are from the carrier's invoices." in costs.text
    assert costs.bbox is not None and costs.bbox.y0 == 3  # the 4th body element: the paragraph's position
    outlook = next(c for c in chunks if "Atacama" in c.text)
    assert (outlook.page, outlook.section) == (2, "Outlook")


def test_docx_embedded_image_is_a_figure_with_ocr(tmp_path: Path):
    path = make_docx(tmp_path / "r.docx", picture=text_png("MAST HEIGHT 12 METRES"))
    doc = DocxParser().parse(str(path), SHA, opts(tmp_path, ocr=True))
    (fig,) = [f for p in doc.pages for f in p.figures]
    assert (tmp_path / "assets" / fig.image_path).is_file() and fig.width == 900
    assert "HEIGHT" in fig.ocr_text.upper() and "12" in fig.ocr_text  # through tesseract, like any image
    figure_chunk = next(c for c in chunks_of(doc) if c.kind == "figure")
    assert figure_chunk.page == 2 and figure_chunk.section == "Outlook"


def test_docx_rendered_page_breaks_give_pages(tmp_path: Path):
    """Word records where its pages broke (w:lastRenderedPageBreak); those are the pages we cite."""
    import docx

    d = docx.Document()
    for i in range(3):
        p = d.add_paragraph(f"Paragraph on page {i + 1}.")
        if i < 2:
            p.runs[0]._r.append(p.runs[0]._r.makeelement(
                "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}lastRenderedPageBreak", {}))
    d.save(str(tmp_path / "w.docx"))
    doc = DocxParser().parse(str(tmp_path / "w.docx"), SHA, opts(tmp_path))
    assert doc.metadata["pagination"] == "word-rendered"
    assert [p.blocks[0].text for p in doc.pages] == ["Paragraph on page 1.", "Paragraph on page 2.",
                                                     "Paragraph on page 3."]


def _need_soffice() -> None:
    from ingest.office_render import soffice

    if soffice() is None:
        pytest.skip("LibreOffice (soffice) is not installed: bash scripts/setup.sh --dev installs it")


def test_libreoffice_gives_docx_real_pages_boxes_and_thumbnails(tmp_path: Path):
    _need_soffice()
    import pymupdf

    doc = DocxParser().parse(str(make_docx(tmp_path / "r.docx", picture=png())), SHA, opts(tmp_path,
                                                                                        render_office=True))
    assert doc.metadata["citation"] == "page+box" and doc.metadata["pagination"] == "libreoffice"
    assert len(doc.pages) == 2 and (doc.pages[0].width, doc.pages[0].height) == (612.0, 792.0)  # US Letter
    for page in doc.pages:  # each page's image, rendered by LibreOffice
        assert page.thumbnail and (tmp_path / "assets" / page.thumbnail).is_file()
    chunks = chunks_of(doc)
    table = next(c for c in chunks if c.kind == "table")
    outlook = next(c for c in chunks if "Atacama" in c.text)
    assert table.page == 1 and outlook.page == 2
    # the boxes are where the words are: render page 1 and read the text inside the table's box
    with pymupdf.open(stream=_render(tmp_path / "r.docx"), filetype="pdf") as pdf:
        assert table.bbox is not None
        inside = pdf[0].get_textbox(pymupdf.Rect(*table.bbox.as_list()))
        assert "Oslo" in inside and "97.5%" in inside and "Atacama" not in inside
    note = next(b for b in doc.pages[0].blocks if b.text.startswith("[Footnote]"))
    assert note.bbox.y0 > 600  # printed at the foot of page 1 (its chunk's box spans paragraph and footnote)
    (fig,) = doc.pages[1].figures
    assert fig.bbox.y1 - fig.bbox.y0 > 50  # the picture's box on the rendered page, not a whole-page box


def test_a_render_that_times_out_falls_back_to_section_citations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _need_soffice()
    from ingest import office_render

    monkeypatch.setattr(office_render, "RENDER_TIMEOUT_S", 0.2)  # soffice cannot start in 0.2 s: killed
    doc = DocxParser().parse(str(make_docx(tmp_path / "r.docx")), SHA, opts(tmp_path, render_office=True))
    assert doc.metadata["citation"] == "section+paragraph" and all(p.thumbnail is None for p in doc.pages)
    assert any("Model K7" in c.text for c in chunks_of(doc))


def _converted(path: Path, source: Path, target: str) -> Path:
    """A real legacy/OpenDocument file, written by LibreOffice itself from one of ours."""
    from ingest.office_render import convert

    with open(source, "rb") as fh:
        data = convert(fh, source.suffix, target)
    assert data, f"LibreOffice could not write .{target}"
    path.write_bytes(data)
    return path


def test_legacy_and_opendocument_files_read_through_libreoffice(tmp_path: Path):
    _need_soffice()
    doc_file = _converted(tmp_path / "trial.doc", make_docx(tmp_path / "t.docx"), "doc")
    assert doc_file.read_bytes()[:4] == b"\xd0\xcf\x11\xe0"  # a real OLE Word 97 file
    doc = LegacyOfficeParser(parser_for).parse(str(doc_file), SHA, opts(tmp_path))
    assert doc.kind == "docx" and doc.metadata["converted_from"] == "doc" and doc.path == str(doc_file)
    table = next(c for c in chunks_of(doc) if c.kind == "table")
    assert "| Oslo | Model K7 | 99.2% |" in table.text and table.section.endswith("Costs")
    ods = _converted(tmp_path / "budget.ods", make_xlsx(tmp_path / "b.xlsx"), "ods")
    sheet = LegacyOfficeParser(parser_for).parse(str(ods), SHA, opts(tmp_path))
    cell = next(c for c in chunks_of(sheet) if "XK-42" in c.text)
    assert sheet.kind == "sheet" and cell.section == "Codes!A1:B3" and "Codes" in sheet.metadata["hidden_sheets"]
    odp = _converted(tmp_path / "launch.odp", make_pptx(tmp_path / "l.pptx"), "odp")
    deck = LegacyOfficeParser(parser_for).parse(str(odp), SHA, opts(tmp_path))
    notes = next(c for c in chunks_of(deck) if "rooftop terrace" in c.text)
    assert deck.kind == "pptx" and notes.page == 1 and notes.text.startswith("Speaker notes:")


def test_legacy_files_without_libreoffice_say_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no soffice on this PATH
    with pytest.raises(FileError, match=r"not installed: run `apt-get install libreoffice.*or save the file as \.xlsx"):
        LegacyOfficeParser(parser_for).parse(str(tmp_path / "old.xls"), SHA, opts(tmp_path))


def make_margins_docx(path: Path) -> Path:
    """Headers and footers per section (python-docx) and a text box (its WordprocessingML, as Word writes the
    VML form: python-docx cannot add one)."""
    import docx
    from docx.enum.section import WD_SECTION
    from docx.oxml import parse_xml

    d = docx.Document()
    d.sections[0].header.paragraphs[0].text = "Harbor project, confidential"
    d.sections[0].footer.paragraphs[0].text = "Issued by the port authority"
    p = d.add_paragraph("The pier is 300 metres long.")
    p._p.append(parse_xml(
        '<w:r xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:v="urn:schemas-'
        'microsoft-com:vml"><w:pict><v:shape><v:textbox><w:txbxContent><w:p><w:r><w:t>Callout: the crane lifts '
        '40 tonnes.</w:t></w:r></w:p></w:txbxContent></v:textbox></v:shape></w:pict></w:r>'))
    appendix = d.add_section(WD_SECTION.NEW_PAGE)
    appendix.header.is_linked_to_previous = False
    appendix.header.paragraphs[0].text = "Appendix on mooring fees"
    d.add_paragraph("Mooring costs 12 euros a night.")
    d.save(str(path))
    return path


def test_docx_headers_footers_and_text_boxes_are_attributed(tmp_path: Path):
    path = make_margins_docx(tmp_path / "h.docx")
    doc = DocxParser().parse(str(path), SHA, opts(tmp_path))
    texts = [(p.number, b.text) for p in doc.pages for b in p.blocks]
    assert texts[:4] == [(1, "[Header] Harbor project, confidential"), (1, "[Footer] Issued by the port authority"),
                         (1, "The pier is 300 metres long."), (1, "[Text box] Callout: the crane lifts 40 tonnes.")]
    assert (1, "[Header] Appendix on mooring fees") in texts  # the second section's own header, once
    assert sum(1 for _, t in texts if t.startswith("[Header]")) == 2
    box = next(b for b in doc.pages[0].blocks if b.text.startswith("[Text box]"))
    assert box.bbox == BBox(0, 0, 0, 0)  # the paragraph it is anchored in
    assert any("crane lifts 40 tonnes" in c.text for c in chunks_of(doc))
    if shutil.which("soffice"):  # rendered: the appendix header is printed on page 2, at the top
        doc = DocxParser().parse(str(path), SHA, opts(tmp_path, render_office=True))
        header = next(b for p in doc.pages for b in p.blocks if b.text == "[Header] Appendix on mooring fees")
        page = next(p for p in doc.pages if header in p.blocks)
        assert page.number == 2 and header.bbox.y1 < 100


def test_status_says_which_office_citations_are_page_accurate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]):
    from assistant.cli import main

    docs = tmp_path / "docs"
    docs.mkdir()
    make_margins_docx(docs / "plain.docx")
    with monkeypatch.context() as m:
        m.setenv("PATH", str(tmp_path / "empty"))  # no LibreOffice in the parser processes
        _sdk(tmp_path / "kb").ingest(docs)
    if shutil.which("soffice"):
        make_margins_docx(docs / "rendered.docx")
        import docx

        d = docx.Document(str(docs / "rendered.docx"))
        d.add_paragraph("Rendered copy.")
        d.save(str(docs / "rendered.docx"))
        _sdk(tmp_path / "kb").ingest(docs)
    assert main(["status", "--kb", str(tmp_path / "kb"), "--json"]) == 0
    office = {d["doc"]: d for d in json.loads(capsys.readouterr().out)["office"]}
    assert (office["plain.docx"]["citation"], office["plain.docx"]["page_accurate"]) == ("section+paragraph", False)
    assert main(["status", "--kb", str(tmp_path / "kb")]) == 0
    text = capsys.readouterr().out
    assert "plain.docx: section + paragraph only (LibreOffice was not installed at ingest" in text
    if shutil.which("soffice"):
        assert (office["rendered.docx"]["citation"], office["rendered.docx"]["page_accurate"]) == ("page+box", True)
        assert "rendered.docx: page + box (rendered by LibreOffice)" in text


def _render(path: Path) -> bytes:
    from ingest.office_render import render_pdf

    with open(path, "rb") as fh:
        pdf = render_pdf(fh, ".docx")
    assert pdf is not None
    return pdf


def test_libreoffice_gives_slides_thumbnails_and_never_renders_macro_files(tmp_path: Path):
    _need_soffice()
    deck = PptxParser().parse(str(make_pptx(tmp_path / "d.pptx")), SHA, opts(tmp_path, render_office=True))
    assert deck.metadata["thumbnails"] == "libreoffice"
    assert all(p.thumbnail and (tmp_path / "assets" / p.thumbnail).is_file() for p in deck.pages)
    macro = tmp_path / "d.pptm"
    macro.write_bytes((tmp_path / "d.pptx").read_bytes())
    deck = PptxParser().parse(str(macro), SHA, opts(tmp_path, render_office=True))
    assert "thumbnails" not in deck.metadata and all(p.thumbnail is None for p in deck.pages)
    assert deck.metadata["macros"].endswith("macros never executed")


SAMPLES = Path(__file__).parent / "data" / "office"  # Word/PowerPoint-saved files (see SOURCES.md)


def test_word_saved_samples_pages_and_comments(tmp_path: Path):
    doc = parse_file(str(SAMPLES / "par-rendered-page-breaks.docx"), SHA, opts(tmp_path))
    assert doc.metadata["pagination"] == "word-rendered"  # Word's own layout: 3 pages
    assert [p.number for p in doc.pages] == [1, 2, 3] and doc.pages[0].blocks[0].text == "No page breaks"
    assert doc.pages[2].blocks[0].text.startswith("Two page")
    doc = parse_file(str(SAMPLES / "comments-rich-para.docx"), SHA, opts(tmp_path))
    texts = [b.text for b in doc.pages[0].blocks]
    noted = texts.index("Some text worthy of note.")
    assert texts[noted + 1].startswith("[Comment by Steve Canny] Text with hyperlink")  # after its paragraph


def test_powerpoint_saved_samples_tables_and_notes(tmp_path: Path):
    deck = parse_file(str(SAMPLES / "tbl-cell.pptx"), SHA, opts(tmp_path))
    third = [b for b in deck.pages[2].blocks if b.kind == "table"]
    assert third and third[0].text.splitlines()[:3] == ["| a | b | c |", "|---|---|---|", "| d | e | f |"]
    assert deck.pages[1].blocks[0].text.startswith("| merged cell |")
    notes = parse_file(str(SAMPLES / "sld-notes.pptx"), SHA, opts(tmp_path))
    assert [b.text for b in notes.pages[0].blocks][-1] == "Speaker notes: Notes" and not notes.pages[1].blocks


# -- XLSX / CSV ---------------------------------------------------------------------------------------------
def test_xlsx_sheets_ranges_formats_merged_and_hidden(tmp_path: Path):
    doc = XlsxParser().parse(str(make_xlsx(tmp_path / "b.xlsx")), SHA, opts(tmp_path))
    assert doc.kind == "sheet" and [p.section for p in doc.pages] == ["Budget", "Codes (hidden sheet)"]
    assert doc.metadata["hidden_sheets"] == "Codes" and "macros" not in doc.metadata
    chunks = chunks_of(doc)
    table = next(c for c in chunks if c.kind == "table" and "Freight" in c.text)
    assert table.section == "Budget!A3:D5" and table.page == 1
    assert table.bbox == BBox(0, 2, 4, 5) and cell_range("Budget", table.bbox) == "Budget!A3:D5"
    assert table.text.splitlines()[0] == "| Item | Q1 | Q2 | Share |"
    assert "| Freight | 1,234.50 | 2000 | 12.5% |" in table.text  # as displayed: number formats applied
    merged = next(c for c in chunks if c.kind == "table" and "Period" in c.text)
    assert merged.text.splitlines()[0] == "| Period | Half year | Half year |" and merged.section == "Budget!A7:C8"
    title = next(c for c in chunks if "Harbor project" in c.text)
    assert title.section == "Budget!A1"
    hidden = next(c for c in chunks if "XK-42" in c.text)
    assert (hidden.page, hidden.section) == (2, "Codes!A1:B3")


def test_a_large_sheet_is_cut_into_row_blocks_that_repeat_the_header(tmp_path: Path):
    doc = XlsxParser().parse(str(make_xlsx(tmp_path / "b.xlsx", big_rows=400)), SHA, opts(tmp_path))
    log = [c for c in chunks_of(doc) if c.page == 3]
    assert len(log) > 5 and all(c.kind == "table" and c.text.startswith("| Day | Reading |") for c in log)
    rows = [row for c in log for row in c.text.splitlines()[2:]]
    assert len(rows) == 400 and rows[-1] == "| day 400 | 1200 |"  # every row once, in order
    assert log[0].section.startswith("Log!A1:B") and log[-1].section.endswith(":B401")
    for c in log:  # each block's range holds exactly its rows (header row 1 only in the first)
        assert c.bbox is not None
        first = int(c.bbox.y0) + 1
        assert c.text.splitlines()[2] == f"| day {first - 1 if first > 1 else 1} | {3 * max(1, first - 1)} |"


def test_a_sheet_formatted_to_row_1048576_reads_its_real_cells_and_a_cell_cap_is_a_clear_error(tmp_path: Path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Key", "Value"])
    ws.append(["alpha", 1])
    for col in range(1, 27):  # formatting applied to whole columns: the declared range is A1:Z1048576
        ws.cell(row=1_048_576, column=col).number_format = "0.00"
    wb.save(str(tmp_path / "wide.xlsx"))
    doc = XlsxParser().parse(str(tmp_path / "wide.xlsx"), SHA, opts(tmp_path))
    assert [c.section for c in chunks_of(doc)] == ["Sheet!A1:B2"]
    make_xlsx(tmp_path / "big.xlsx", big_rows=600)
    with pytest.raises(ResourceLimit, match="non-empty cells"):
        XlsxParser(max_cells=1000).parse(str(tmp_path / "big.xlsx"), SHA, opts(tmp_path))


def test_a_macro_enabled_workbook_is_read_and_never_run(tmp_path: Path):
    path = make_xlsx(tmp_path / "m.xlsm")
    with zipfile.ZipFile(path, "a") as zf:  # a VBA project beside the sheets, as Excel writes it
        zf.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0 Sub AutoOpen(): Shell \"touch PWNED\" End Sub")
    doc = parse_file(str(path), SHA, opts(tmp_path))
    assert doc.metadata["macros"] == "macro-enabled file: read as data, macros never executed"
    assert any("Freight" in c.text for c in chunks_of(doc)) and not (tmp_path / "PWNED").exists()


def test_csv_is_one_sheet_with_ranges(tmp_path: Path):
    (tmp_path / "rates.csv").write_text("city;rate\nOslo;4.5\nLagos;7.25\n", encoding="utf-8")
    doc = CsvParser().parse(str(tmp_path / "rates.csv"), SHA, opts(tmp_path))
    (chunk,) = chunks_of(doc)
    assert chunk.section == "rates!A1:B3" and chunk.text.splitlines()[3] == "| Lagos | 7.25 |"


# -- PPTX ----------------------------------------------------------------------------------------------------
def test_pptx_slides_title_body_table_notes_and_picture(tmp_path: Path):
    doc = PptxParser().parse(str(make_pptx(tmp_path / "d.pptx", picture=png((300, 100)))), SHA, opts(tmp_path))
    assert doc.kind == "pptx" and [p.section for p in doc.pages] == ["Launch plan", "Pricing"]
    assert (doc.pages[0].width, doc.pages[0].height) == (720.0, 540.0)  # 10 x 7.5 in, in points
    chunks = chunks_of(doc)
    body = next(c for c in chunks if "Ship the beta" in c.text)
    assert body.page == 1 and body.bbox is not None and body.bbox.y0 > 100  # the body placeholder's box
    notes = next(c for c in chunks if "rooftop terrace" in c.text)
    assert notes.text.startswith("Speaker notes:") and notes.section == "Launch plan (speaker notes)"
    assert notes.page == 1
    table = next(c for c in chunks if c.kind == "table")
    assert table.page == 2 and table.bbox == BBox(72.0, 144.0, 504.0, 288.0)  # 1 in, 2 in, 6 x 2 in
    assert table.text.splitlines()[0] == "| Plan | Monthly price |"
    (fig,) = doc.pages[1].figures
    assert fig.bbox == BBox(468.0, 360.0, 684.0, 432.0) and (tmp_path / "assets" / fig.image_path).is_file()


# -- mail ----------------------------------------------------------------------------------------------------
def test_eml_headers_body_and_attachments_as_documents_of_their_own(tmp_path: Path):
    make_docx(tmp_path / "report.docx")
    make_xlsx(tmp_path / "budget.xlsx")
    path = make_eml(tmp_path / "m.eml", [
        ("report.docx", (tmp_path / "report.docx").read_bytes(),
         "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("budget.xlsx", (tmp_path / "budget.xlsx").read_bytes(),
         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("photo.png", png(), "image/png"),
        ("tool.exe", b"MZ\x90\x00", "application/octet-stream"),
        ("broken.docx", b"PK\x03\x04 not really a zip", "application/octet-stream"),
    ])
    doc = MailParser().parse(str(path), SHA, opts(tmp_path))  # no staging folder: attachments listed, not saved
    assert (doc.kind, doc.title, len(doc.pages)) == ("mail", "Warehouse inspection results", 1)
    assert doc.metadata["from"] == "Priya Natarajan <priya@example.org>" and doc.metadata["to"].startswith("Board")
    assert [a.name for a in doc.attachments] == ["report.docx", "budget.xlsx", "photo.png", "broken.docx"]
    assert "tool.exe: not a type Citeline reads" in doc.metadata["attachment_errors"]
    family = parse_family(str(path), SHA, opts(tmp_path))
    mail = family.document
    assert mail.metadata["attachments"] == "report.docx; budget.xlsx; photo.png"
    assert "broken.docx: not a readable" in mail.metadata["attachment_errors"]
    report, budget, photo = family.attachments
    assert mail.metadata["attachment_ids"] == "; ".join(d.doc_id for d in family.attachments)
    assert {d.metadata["parent"] for d in family.attachments} == {mail.doc_id}
    body = next(c for c in chunks_of(mail) if "inspection went well" in c.text)
    assert (body.page, body.section) == (1, "Warehouse inspection results")
    table = next(c for c in chunks_of(report) if "Model K7" in c.text)
    assert (table.page, table.section) == (1, "Results › Costs")  # its own pages, as if it had been a file
    cell = next(c for c in chunks_of(budget) if "XK-42" in c.text)
    assert (cell.page, cell.section) == (2, "Codes!A1:B3")
    fig = photo.pages[0].figures[0]
    assert fig.image_path.startswith(f"{mail.doc_id}/attachments/{photo.doc_id}/")
    assert (tmp_path / "assets" / fig.image_path).is_file()


def test_mbox_holds_each_message_and_a_forwarded_message_nests(tmp_path: Path):
    import mailbox

    inner = make_eml(tmp_path / "inner.eml", [("notes.txt", b"The freezer alarm code is 7731.", "text/plain")])
    outer = EmailMessage()
    outer["From"], outer["Subject"] = "ops@example.org", "Fwd: alarm"
    outer.set_content("See the forwarded message.")
    outer.add_attachment(inner.read_bytes(), maintype="message", subtype="rfc822", filename="inner.eml")
    box = mailbox.mbox(str(tmp_path / "archive.mbox"))
    box.add(outer)
    second = EmailMessage()
    second["From"], second["Subject"] = "hr@example.org", "Holiday rota"
    second.set_content("The office closes on 24 December.")
    box.add(second)
    box.close()
    family = parse_family(str(tmp_path / "archive.mbox"), SHA, opts(tmp_path))
    assert family.document.metadata["messages"] == "2"
    assert [p.section for p in family.document.pages] == ["Fwd: alarm", "Holiday rota"]
    forwarded, notes = family.attachments
    assert forwarded.kind == "mail" and forwarded.metadata["parent"] == family.document.doc_id
    assert notes.metadata["parent"] == forwarded.doc_id and notes.metadata["attachment_path"] == "inner.eml › notes.txt"
    assert any("7731" in c.text for c in chunks_of(notes))


# -- EPUB ----------------------------------------------------------------------------------------------------
def make_epub(path: Path, *, picture: bytes | None = None, drm: bool = False) -> Path:
    """An EPUB 3 as the spec lays it out: `mimetype` stored first, the container, the OPF, spine-ordered XHTML."""
    opf = ('<?xml version="1.0" encoding="UTF-8"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
           'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:identifier id="id">'
           'urn:uuid:1</dc:identifier><dc:title>The Lighthouse Keeper</dc:title><dc:creator>Mara Quill</dc:creator>'
           '<dc:language>en</dc:language></metadata><manifest>'
           '<item id="c2" href="text/ch2.xhtml" media-type="application/xhtml+xml"/>'
           '<item id="c1" href="text/ch1.xhtml" media-type="application/xhtml+xml"/>'
           '<item id="img" href="images/lamp.png" media-type="image/png"/>'
           '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/></manifest>'
           '<spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>')
    ch1 = ("<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>One</title></head><body>"
           "<h1>Chapter One: The Storm</h1><p>The lamp was lit at dusk every night for forty years.</p>"
           "<p>Nobody came.</p></body></html>")
    ch2 = ("<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>Two</title></head><body>"
           "<h1>Chapter Two: The Ship</h1><p>The schooner Albatross ran aground on the northern reef.</p>"
           + ('<img src="../images/lamp.png" alt="the lamp"/>' if picture else "") + "</body></html>")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")
        zf.writestr("META-INF/container.xml", '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:'
                    'names:tc:opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" '
                    'media-type="application/oebps-package+xml"/></rootfiles></container>')
        zf.writestr("OEBPS/content.opf", opf)
        zf.writestr("OEBPS/text/ch1.xhtml", ch1)
        zf.writestr("OEBPS/text/ch2.xhtml", ch2)
        zf.writestr("OEBPS/nav.xhtml", "<html><body><nav><ol><li>One</li></ol></nav></body></html>")
        if picture:
            zf.writestr("OEBPS/images/lamp.png", picture)
        if drm:
            zf.writestr("META-INF/encryption.xml", '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:'
                        'container" xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData>'
                        '<enc:CipherData><enc:CipherReference URI="OEBPS/text/ch1.xhtml"/></enc:CipherData>'
                        '</enc:EncryptedData></encryption>')
    return path


def test_epub_chapters_in_spine_order_with_headings_and_images(tmp_path: Path):
    doc = EpubParser().parse(str(make_epub(tmp_path / "b.epub", picture=png())), SHA, opts(tmp_path))
    assert (doc.kind, doc.title, doc.author) == ("epub", "The Lighthouse Keeper", "Mara Quill")
    # the spine (ch1, ch2) wins over the manifest's order (ch2 first); nav.xhtml is not in the spine
    assert [p.section for p in doc.pages] == ["Chapter One: The Storm", "Chapter Two: The Ship"]
    chunks = chunks_of(doc)
    reef = next(c for c in chunks if "northern reef" in c.text)
    assert (reef.page, reef.section) == (2, "Chapter Two: The Ship")
    (fig,) = doc.pages[1].figures
    assert (tmp_path / "assets" / fig.image_path).is_file()
    with pytest.raises(FileError, match="DRM-protected"):
        EpubParser().parse(str(make_epub(tmp_path / "drm.epub", drm=True)), SHA, opts(tmp_path))


# -- bad input: one clear error per file, through the real bounded worker -----------------------------------
def _bomb_docx(path: Path, good: Path) -> Path:
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
        dst.writestr("word/media/huge.bin", b"\0" * (40 * 1024**2))  # 40 MB of zeros in ~40 KB
    return path


def _encrypted(path: Path, plain: Path, password: str) -> Path:
    from msoffcrypto.format.ooxml import OOXMLFile

    with open(plain, "rb") as fh, open(path, "wb") as out:
        OOXMLFile(fh).encrypt(password, out)
    return path


def test_bad_office_files_fail_alone_with_clear_errors(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    good = make_docx(tmp_path / "good.docx")
    _bomb_docx(docs / "bomb.docx", good)
    _encrypted(docs / "locked.xlsx", make_xlsx(tmp_path / "plain.xlsx"), "s3cret")
    (docs / "truncated.pptx").write_bytes(make_pptx(tmp_path / "p.pptx").read_bytes()[:700])
    (docs / "notmail.eml").write_bytes(b"\x00\x01\x02 binary junk")
    make_docx(docs / "fine.docx")
    report = _sdk(tmp_path / "kb").ingest(docs).last_report
    by_name = {Path(f.path).name: f for f in report.files}
    assert by_name["fine.docx"].status == "ingested" and by_name["fine.docx"].chunks >= 3
    assert "possible zip bomb" in (by_name["bomb.docx"].error or "")
    assert "password-protected Office file: remove the password and re-ingest" in (by_name["locked.xlsx"].error or "")
    assert "damaged zip" in (by_name["truncated.pptx"].error or "")
    assert "no mail headers" in (by_name["notmail.eml"].error or "")
    assert {f.status for n, f in by_name.items() if n != "fine.docx"} == {"failed"}


def test_a_password_protected_office_file_opens_with_its_password(tmp_path: Path):
    locked = _encrypted(tmp_path / "locked.docx", make_docx(tmp_path / "plain.docx"), "s3cret")
    with pytest.raises(PasswordRequired):
        DocxParser().parse(str(locked), SHA, opts(tmp_path, passwords=("wrong",)))
    with pytest.raises(FileError, match="password-protected Office file"):
        DocxParser().parse(str(locked), SHA, opts(tmp_path))
    doc = DocxParser().parse(str(locked), SHA, opts(tmp_path, passwords=("wrong", "s3cret")))
    assert any("Model K7" in c.text for c in chunks_of(doc))


def test_a_legacy_binary_office_file_under_an_ooxml_name_says_what_to_do(tmp_path: Path):
    (tmp_path / "old.docx").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1024)
    with pytest.raises(CorruptFile, match="legacy binary Office file"):
        DocxParser().parse(str(tmp_path / "old.docx"), SHA, opts(tmp_path))


# -- retrieval and answers over a mixed folder --------------------------------------------------------------
def _sdk(kb: Path) -> Citeline:
    settings = Settings(kb_dir=kb, kb=KBSettings(text_model="fake", image_model="fake", tag_images=False),
                        answer=AnswerSettings())
    return Citeline(kb, settings=settings)


@pytest.fixture(scope="module")
def mixed_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("office")
    docs = root / "docs"
    docs.mkdir()
    make_docx(docs / "trial.docx")
    make_pptx(docs / "launch.pptx")
    make_xlsx(docs / "budget.xlsx")
    import docx

    memo = docx.Document()
    memo.add_heading("Cold storage memo", 1)
    memo.add_paragraph("The walk-in freezer is kept at minus 22 degrees Celsius.")
    buf = io.BytesIO()
    memo.save(buf)
    make_eml(docs / "inspection.eml", [("memo.docx", buf.getvalue(),
                                        "application/vnd.openxmlformats-officedocument.wordprocessingml.document")])
    report = _sdk(root / "kb").ingest(docs).last_report
    assert report.totals["failed"] == 0 and report.totals["ingested"] == 4, report.to_json()
    return root / "kb"


CASES = [
    # question, document, page, the chunk's section (= the citation's section / slide / cell range), words in it
    ("What uptime did the Model K7 sensor have in Oslo?", "trial.docx", 1, "Results › Costs", "99.2%"),
    ("Where is the launch party held?", "launch.pptx", 1, "Launch plan (speaker notes)", "rooftop terrace"),
    ("Which door code opens the cold lab?", "budget.xlsx", 2, "Codes!A1:B3", "XK-42"),
    ("At what temperature is the walk-in freezer kept?", "inspection.eml › memo.docx", 1, "Cold storage memo",
     "minus 22 degrees"),
]


@pytest.mark.parametrize(("question", "doc", "page", "section", "words"), CASES)
def test_answers_from_office_files_cite_the_right_page_slide_or_cell(mixed_kb: Path, question: str, doc: str,
                                                                     page: int, section: str, words: str):
    sdk = _sdk(mixed_kb)
    answer = sdk.ask(question, model="extractive")
    assert not answer.abstained and words in answer.text, answer.to_json()
    cited = [c for c in answer.citations if c.verified and words in c.quote]
    assert cited, answer.to_json()
    c = cited[0]
    assert (c.doc, c.page) == (doc, page)
    hit = next(h for h in sdk.search(question, top_k=10) if h.chunk is not None and h.chunk.chunk_id == c.chunk_id)
    assert hit.section == section and words in hit.text
    if doc.endswith(".xlsx"):  # the citation's box is the cell range itself
        assert c.bbox is not None and cell_range("Codes", BBox(*c.bbox)) == section


def test_the_ui_source_panel_shows_a_cited_cell_range_as_a_table(mixed_kb: Path):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT
    from ui.state import UIConfig

    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=60)
    at.session_state["base_config"] = UIConfig(kb_dir=str(mixed_kb), text_model="fake", image_model="fake",
                                               model="extractive")
    at.run()
    at.chat_input[0].set_value("Which door code opens the cold lab?")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    cards = [e for e in at.expander if e.label.startswith("[1] budget.xlsx · page 2")]
    assert cards and "verified" in cards[0].label
    tables = [m.value for m in cards[0].markdown if m.value.startswith("| Room | Door code |")]
    assert tables == ["| Room | Door code |\n|---|---|\n| Cold lab | XK-42 |\n| Server room | QZ-17 |"]


def test_the_ui_source_panel_says_which_message_an_attachment_came_with(mixed_kb: Path):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT
    from ui.state import UIConfig

    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=60)
    at.session_state["base_config"] = UIConfig(kb_dir=str(mixed_kb), text_model="fake", image_model="fake",
                                               model="extractive")
    at.run()
    at.chat_input[0].set_value("At what temperature is the walk-in freezer kept?")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    cards = [e for e in at.expander if e.label.startswith("[1] inspection.eml › memo.docx · page 1")]
    assert cards and "verified" in cards[0].label, [e.label for e in at.expander]
    assert any("attached to inspection.eml" in c.value for c in cards[0].caption)


def test_re_ingesting_office_files_is_incremental(mixed_kb: Path):
    docs = mixed_kb.parent / "docs"
    report = _sdk(mixed_kb).ingest(docs).last_report
    assert report is not None and report.totals["unchanged"] == 4 and report.totals["ingested"] == 0
    import openpyxl

    wb = openpyxl.load_workbook(docs / "budget.xlsx")
    wb["Codes"]["B2"] = "ZZ-99"  # the cold lab's code changes: only this file is parsed again
    wb.save(str(docs / "budget.xlsx"))
    sdk = _sdk(mixed_kb)
    report = sdk.ingest(docs).last_report
    assert report is not None and (report.totals["ingested"], report.totals["unchanged"]) == (1, 3)
    hits = [h for h in sdk.search("door code cold lab", top_k=5) if h.doc_name == "budget.xlsx"]
    assert "ZZ-99" in hits[0].text and "XK-42" not in " ".join(h.text for h in hits)
