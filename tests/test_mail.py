"""Mail attachments as documents of their own: real messages written with the standard `email` package carrying
a real PDF (../shared/data), a DOCX and an XLSX written by python-docx and openpyxl, a picture of words for OCR,
a forwarded message, a corrupt PDF and an encrypted one; ingested through the real worker processes, searched
and answered with verified citations to the attachment's own page or cell range, linked to the message."""

from __future__ import annotations

import io
import json
import mailbox
import shutil
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from assistant.cli import main
from assistant.sdk import Citeline
from ingest.attachments import MAX_DEPTH, parse_family
from ingest.office_mail import MAX_ATTACHMENTS
from retrieval.kb_writer import IngestReport
from tests.conftest import SHARED_DATA, needs_data
from tests.test_office import SHA, _sdk, make_xlsx, opts, png, text_png

PAPER = SHARED_DATA / "pdfs" / "pdfminer__naacl06-shinyama.pdf"  # 8 pages (pdfminer.six's test suite, MIT)
LOCKED = SHARED_DATA / "pdfs" / "pdfminer__aes-128.pdf"  # AES-encrypted, with a user password
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

pytestmark = needs_data("pdfs")


def message(subject: str, body: str, attachments: list[tuple[str, bytes, str]]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"] = "Priya Natarajan <priya@example.org>", "Board <board@example.org>"
    msg["Date"], msg["Subject"] = "Tue, 03 Mar 2026 09:30:00 +0000", subject
    msg.set_content(body)
    for name, data, mime in attachments:
        main_type, sub = mime.split("/")
        msg.add_attachment(data, maintype=main_type, subtype=sub, filename=name)
    return msg


def memo_docx(sentence: str) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("Cold storage memo", 1)
    d.add_paragraph(sentence)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def inspection(tmp: Path) -> bytes:
    forwarded = message("Alarm", "Forwarded for the record.", [
        ("notes.txt", b"The freezer alarm code is 7731.", "text/plain")])
    return bytes(message("Warehouse inspection results", "The details are in the attached files.", [
        ("paper.pdf", PAPER.read_bytes(), "application/pdf"),
        ("memo.docx", memo_docx("The walk-in freezer is kept at minus 22 degrees Celsius."), DOCX),
        ("budget.xlsx", make_xlsx(tmp / "budget.xlsx").read_bytes(), XLSX),
        ("scan.png", text_png("Loading bay gate 5521"), "image/png"),
        ("fwd.eml", bytes(forwarded), "message/rfc822"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj <<>> garbage", "application/pdf"),
        ("locked.pdf", LOCKED.read_bytes(), "application/pdf"),
        ("tool.exe", b"MZ\x90\x00", "application/octet-stream"),
    ]))


@pytest.fixture(scope="module")
def mail_kb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, IngestReport]:
    root = tmp_path_factory.mktemp("mail")
    docs = root / "docs"
    docs.mkdir()
    (docs / "inspection.eml").write_bytes(inspection(root))
    box = mailbox.mbox(str(docs / "archive.mbox"))
    box.add(message("Holiday rota", "The office closes on 24 December.", []))
    box.add(message("Canteen", "See the menu.", [("menu.csv", b"Day,Dish\nMonday,Lentil soup\n", "text/csv")]))
    box.close()
    report = _sdk(root / "kb").ingest(docs).last_report
    assert report is not None and report.totals["failed"] == 0, report.to_json()
    return root / "kb", report


def documents(sdk: Citeline) -> dict[str, dict[str, Any]]:
    rows = sdk.kb.catalog.db.execute("SELECT name, doc_id, kind, pages, metadata FROM documents").fetchall()
    return {name: {"doc_id": d, "kind": k, "pages": p, **json.loads(m)} for name, d, k, p, m in rows}


def test_each_attachment_is_its_own_document_linked_to_its_message(mail_kb: tuple[Path, IngestReport]):
    docs = documents(_sdk(mail_kb[0]))
    mail = docs["inspection.eml"]
    assert (mail["kind"], mail["pages"]) == ("mail", 1)  # the message alone: its attachments are not its pages
    assert mail["attachments"] == "paper.pdf; memo.docx; budget.xlsx; scan.png; fwd.eml"
    kinds = {"paper.pdf": ("pdf", 8), "memo.docx": ("docx", 1), "budget.xlsx": ("sheet", 2), "scan.png": ("image", 1),
             "fwd.eml": ("mail", 1)}
    for name, (kind, pages) in kinds.items():
        child = docs[f"inspection.eml › {name}"]
        assert (child["kind"], child["pages"], child["parent"], child["attachment"]) == (kind, pages, mail["doc_id"],
                                                                                         name)
    assert mail["attachment_ids"].split("; ") == [docs[f"inspection.eml › {n}"]["doc_id"] for n in kinds]
    notes = docs["inspection.eml › fwd.eml › notes.txt"]  # a forwarded message's attachment hangs on it
    assert notes["parent"] == docs["inspection.eml › fwd.eml"]["doc_id"]
    menu = docs["archive.mbox › menu.csv"]  # in an mbox: the message's page
    assert (menu["parent"], menu["parent_page"]) == (docs["archive.mbox"]["doc_id"], "2")
    assert _sdk(mail_kb[0]).kb.check() == []


def test_bad_attachments_are_reported_per_attachment_and_the_message_stays(mail_kb: tuple[Path, IngestReport]):
    result = next(f for f in mail_kb[1].files if f.path.endswith("inspection.eml"))
    assert result.status == "ingested" and result.attachments == 6 and result.warning is None
    errors = dict(e.split(": ", 1) for e in result.attachment_errors)
    assert set(errors) == {"broken.pdf", "locked.pdf", "tool.exe"}, errors
    assert "password" in errors["locked.pdf"] and "--password" in errors["locked.pdf"]
    assert "truncated" in errors["broken.pdf"] and "not a type Citeline reads" in errors["tool.exe"]
    assert "/citeline-attachments-" not in " ".join(errors.values())  # named as sent, not as staged


CASES = [
    # question, the attachment document, its page, the cited section or cell range ("" = any), words
    ("What do the columns of the table show?", "inspection.eml › paper.pdf", 2, "", "article dates"),
    ("At what temperature is the walk-in freezer kept?", "inspection.eml › memo.docx", 1, "Cold storage memo",
     "minus 22 degrees"),
    ("Which door code opens the cold lab?", "inspection.eml › budget.xlsx", 2, "Codes!A1:B3", "XK-42"),
    ("What is the freezer alarm code?", "inspection.eml › fwd.eml › notes.txt", 1, "", "7731"),
    ("Which number has the loading bay gate?", "inspection.eml › scan.png", 1, "", "5521"),
]


@pytest.mark.parametrize(("question", "doc", "page", "section", "words"), CASES)
def test_an_answer_in_an_attachment_cites_the_attachment_and_its_message(
        mail_kb: tuple[Path, IngestReport], question: str, doc: str, page: int, section: str, words: str):
    sdk = _sdk(mail_kb[0])
    answer = sdk.ask(question, model="extractive")
    cited = [c for c in answer.citations if c.verified and words in c.quote]
    assert not answer.abstained and cited, answer.to_json()
    c = cited[0]
    parent = documents(sdk)[doc.rsplit(" › ", 1)[0]]
    assert (c.doc, c.page) == (doc, page)
    assert c.attached_to is not None and c.attached_to.doc_id == parent["doc_id"]
    assert c.to_json()["attached_to"]["doc"] == doc.rsplit(" › ", 1)[0]
    hit = next(h for h in sdk.search(question, top_k=10) if h.chunk is not None and h.chunk.chunk_id == c.chunk_id)
    assert hit.to_json()["attached_to"]["doc_id"] == parent["doc_id"]
    assert not section or hit.section == section


def test_cli_json_names_the_attachment_and_its_message(mail_kb: tuple[Path, IngestReport],
                                                       capsys: pytest.CaptureFixture[str]):
    kb = str(mail_kb[0])
    args = ["--kb", kb, "--json"]
    assert main(["search", "walk-in freezer temperature", *args]) == 0
    hits = json.loads(capsys.readouterr().out)
    memo = next(h for h in hits if h["doc"] == "inspection.eml › memo.docx")
    assert memo["attached_to"]["doc"] == "inspection.eml"
    assert main(["ask", "At what temperature is the walk-in freezer kept?", "--model", "extractive", *args]) == 0
    cited = json.loads(capsys.readouterr().out)["citations"]
    assert any(c["doc"] == "inspection.eml › memo.docx" and c["attached_to"]["doc"] == "inspection.eml"
               for c in cited if c["verified"])


def _names(sdk: Citeline) -> set[str]:
    return {row.name for row in sdk.documents()}


def test_re_ingest_is_a_no_op_an_edit_replaces_the_attachments_and_remove_removes_them(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    path = docs / "m.eml"
    path.write_bytes(bytes(message("Plan", "v1", [("plan.txt", b"The launch is on Monday.", "text/plain"),
                                                  ("notes.txt", b"Bring the red folder.", "text/plain")])))
    sdk = _sdk(tmp_path / "kb")
    sdk.ingest(docs)
    assert _names(sdk) == {"m.eml", "m.eml › plan.txt", "m.eml › notes.txt"}
    generation = sdk.kb.catalog.generation
    report = sdk.ingest(docs).last_report
    assert report is not None and report.totals["unchanged"] == 1 and report.totals["ingested"] == 0
    assert sdk.kb.catalog.generation == generation  # nothing was written
    path.write_bytes(bytes(message("Plan", "v2", [("plan.txt", b"The launch moved to Friday.", "text/plain"),
                                                  ("mast.png", png(), "image/png")])))
    sdk.ingest(docs)
    assert _names(sdk) == {"m.eml", "m.eml › plan.txt", "m.eml › mast.png"}
    assert "Friday" in sdk.search("When is the launch?", top_k=1)[0].text
    assert not any("Monday" in h.text or "red folder" in h.text for h in sdk.search("launch Monday red folder"))
    assert sdk.kb.check() == []
    (mail_id,) = [r.doc_id for r in sdk.documents() if r.name == "m.eml"]
    assert (tmp_path / "kb" / "assets" / mail_id / "attachments").is_dir()  # the picture's crop
    assert sdk.remove(path) == [str(path)]
    assert sdk.documents() == [] and sdk.kb.check() == []
    assert list((tmp_path / "kb" / "assets").iterdir()) == []  # the attachments' assets went with the message


def test_nesting_and_count_limits_stop_a_mail_bomb_and_say_so(tmp_path: Path):
    inner = message("Level 5", "the bottom", [("deep.txt", b"too deep to read", "text/plain")])
    for level in range(4, 0, -1):  # each message forwards the one below
        inner = message(f"Level {level}", "fwd", [(f"level{level + 1}.eml", bytes(inner), "message/rfc822")])
    many = [(f"n{i}.txt", f"note {i}".encode(), "text/plain") for i in range(MAX_ATTACHMENTS + 3)]
    (tmp_path / "bomb.eml").write_bytes(bytes(message("Bomb", "top", [("level2.eml", bytes(inner), "message/rfc822"),
                                                                      *many[:-1]])))
    family = parse_family(str(tmp_path / "bomb.eml"), SHA, opts(tmp_path))
    levels = [d for d in family.attachments if d.kind == "mail"]
    assert len(levels) == MAX_DEPTH  # level2 … level4 are read; level4's own attachment is not
    assert "nested deeper than" in levels[-1].metadata["attachment_errors"]
    assert "3 more attachments: over the limit of 100" in family.document.metadata["attachment_errors"]
    assert sum(1 for d in family.attachments if d.kind == "text") == MAX_ATTACHMENTS - 1


def test_the_http_api_links_and_deletes_attachments_with_their_message(tmp_path: Path):
    pytest.importorskip("fastapi")
    import httpx

    from assistant.server.app import create_app
    from tests.test_server import serving

    raw = bytes(message("Plan", "See attached.", [("notes.txt", b"The launch is on Monday.", "text/plain")]))
    with _sdk(tmp_path / "kb") as sdk, serving(create_app(sdk, api_key=None)) as url, \
            httpx.Client(base_url=url, timeout=60) as client:
        r = client.post("/v1/ingest?wait=true", files=[("files", ("plan.eml", raw, "message/rfc822"))])
        assert r.status_code == 200, r.text
        hit = client.post("/v1/search", json={"query": "When is the launch?"}).json()["hits"][0]
        assert (hit["doc"], hit["attached_to"]["doc"]) == ("plan.eml › notes.txt", "plan.eml")
        listed = {d["name"]: d for d in client.get("/v1/documents").json()["documents"]}
        assert listed["plan.eml › notes.txt"]["attached_to"]["doc_id"] == listed["plan.eml"]["doc_id"]
        r = client.delete(f"/v1/documents/{hit['doc_id']}")
        assert r.status_code == 409 and "attachment of plan.eml" in r.json()["error"]
        assert client.delete(f"/v1/documents/{hit['attached_to']['doc_id']}").status_code == 200
        assert client.get("/v1/documents").json()["documents"] == []
        assert sdk.kb.check() == []


def test_an_attachment_in_the_folder_too_stays_when_the_message_goes(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_bytes(b"The launch is on Monday.")
    (docs / "m.eml").write_bytes(bytes(message("Plan", "attached", [("notes.txt", b"The launch is on Monday.",
                                                                     "text/plain")])))
    sdk = _sdk(tmp_path / "kb")
    sdk.ingest(docs)
    assert _names(sdk) == {"notes.txt", "m.eml", "m.eml › notes.txt"}  # one document per carrier
    sdk.remove(docs / "m.eml")
    assert _names(sdk) == {"notes.txt"} and sdk.kb.check() == []


def test_an_outlook_msg_is_read_like_mail_with_its_attachments_as_documents(tmp_path: Path):
    pytest.importorskip("extract_msg")  # the optional `msg` extra (GPL-3.0)
    from tests.conftest import ROOT

    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(ROOT / "tests" / "data" / "mail" / "attachment_msg_pdf.msg", docs / "outlook.msg")
    sdk = _sdk(tmp_path / "kb")
    report = sdk.ingest(docs).last_report
    assert report is not None and report.files[0].status == "ingested" and report.files[0].attachments == 2
    found = documents(sdk)
    mail = found["outlook.msg"]
    assert (mail["kind"], mail["subject"], mail["from"]) == ("mail", "test email", "Nick Booth <nick.booth@pof.com.au>")
    assert mail["attachments"] == "Test Attachment.msg; smbprn.00009008.KdcPjl.pdf"
    inner, pdf = found["outlook.msg › Test Attachment.msg"], found["outlook.msg › smbprn.00009008.KdcPjl.pdf"]
    assert (inner["kind"], pdf["kind"], pdf["pages"]) == ("mail", "pdf", 1)
    assert inner["parent"] == pdf["parent"] == mail["doc_id"]
    hits = {h.doc_name: h for h in sdk.search("Blah blah blah", top_k=5)}  # the PDF is a print of that message
    for name in ("outlook.msg › Test Attachment.msg", "outlook.msg › smbprn.00009008.KdcPjl.pdf"):
        assert hits[name].attached_to is not None and hits[name].attached_to.name == "outlook.msg"
    assert sdk.kb.check() == []


def test_a_hanging_attachment_is_stopped_alone_by_its_own_time_bound(tmp_path: Path):
    from assistant.answer import AnswerSettings
    from assistant.config import Settings
    from ingest.isolation import Limits
    from retrieval.settings import KBSettings
    from tests.test_bad_input_e2e import hang_pdf

    hang_pdf(tmp_path / "hang.pdf")  # needs hours to interpret: only the worker's time bound stops it
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "m.eml").write_bytes(bytes(message("Plan", "Two files.", [
        ("hang.pdf", (tmp_path / "hang.pdf").read_bytes(), "application/pdf"),
        ("notes.txt", b"The launch is on Monday.", "text/plain")])))
    kb = KBSettings(text_model="fake", image_model="fake", tag_images=False,
                    limits=Limits(seconds_per_file=3, workers=1))
    sdk = Citeline(tmp_path / "kb", settings=Settings(kb_dir=tmp_path / "kb", kb=kb, answer=AnswerSettings()))
    report = sdk.ingest(docs).last_report
    assert report is not None
    (result,) = report.files
    assert result.status == "ingested" and result.attachments == 1, result
    (error,) = result.attachment_errors
    assert error.startswith("hang.pdf: ") and "longer than the 3 s per-file time bound" in error
    assert _names(sdk) == {"m.eml", "m.eml › notes.txt"} and sdk.kb.check() == []
