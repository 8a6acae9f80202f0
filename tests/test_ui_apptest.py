"""The Streamlit app's flows under `streamlit.testing.v1.AppTest`, with the package's fakes (seconds), plus
the pure helpers (upload validation, bbox scaling, Markdown export) and one run with the real offline models."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("streamlit")

from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.conftest import ROOT, make_pdf  # noqa: E402
from ui.state import UIConfig  # noqa: E402

APP = str(ROOT / "ui" / "app.py")
CITED = "The battery lasts 12 hours on a full charge [1]."
PAGES = ["The battery lasts 12 hours on a full charge.\n\nCharging takes 2 hours with the supplied adapter.",
         "The warranty covers two years from the date of purchase."]


def _png(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def fake_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A KB built once with the fake embedders: a two-page PDF and a picture."""
    from assistant.sdk import Citeline

    root = tmp_path_factory.mktemp("ui")
    docs = root / "docs"
    docs.mkdir()
    make_pdf(docs / "manual.pdf", PAGES)
    (docs / "red.png").write_bytes(_png())
    Citeline(root / "kb", text_model="fake", image_model="fake").ingest(docs)
    return root / "kb"


def _app(kb: Path, model: str = f"fake:{CITED}", **config: Any) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["base_config"] = UIConfig(kb_dir=str(kb), text_model="fake", image_model="fake",
                                               model=model, **config)
    return at.run()


def _ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question)
    return at.run()


def _no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


# -- chat -------------------------------------------------------------------------------------------------
def test_empty_chat_renders(fake_kb: Path) -> None:
    at = _app(fake_kb)
    _no_exceptions(at)
    assert any("Ask a question" in m.value for m in at.markdown)
    assert at.sidebar.text_input(key="kb_dir_input").value == str(fake_kb)


def test_ask_shows_cited_answer_with_verified_source(fake_kb: Path) -> None:
    at = _ask(_app(fake_kb), "How long does the battery last?")
    _no_exceptions(at)
    user, assistant = at.chat_message[0], at.chat_message[1]
    assert user.markdown[0].value == "How long does the battery last?"
    assert ":blue-badge[1]" in assistant.markdown[0].value  # the marker rendered as a verified chip
    chips = at.get("button_group")[0]
    assert chips.options[0].startswith("✓ [1] manual.pdf p.1")
    cards = [e.label for e in at.expander if e.label.startswith("[")]
    assert cards[0].startswith("[1] manual.pdf · page 1") and "verified" in cards[0]
    assert any("12 hours" in m.value for m in at.markdown if m.value.startswith(">"))  # the quote
    images = at.get("image")
    assert images, "no highlighted page image in the sources panel"
    export = at.get("download_button")[0]
    assert export.proto.label == "Export as Markdown"


def test_abstention_shows_closest_sources(fake_kb: Path) -> None:
    at = _ask(_app(fake_kb, model="fake"), "What colour is the sky on Mars?")
    _no_exceptions(at)
    assert any("Not in your documents" in w.value for w in at.warning)
    assert any("Closest sources" in i.value for i in at.info)
    closest = [e.label for e in at.expander if e.label.startswith("[")]
    assert closest and all("verified" not in label for label in closest)  # shown, but never as verified


def test_citation_chip_focuses_that_source(fake_kb: Path) -> None:
    at = _ask(_app(fake_kb), "How long does the battery last?")
    chips = at.get("button_group")[0]
    chips.set_value(chips.options[1]).run()  # the second source
    _no_exceptions(at)
    cards = {e.label.split(" ")[0]: e for e in at.expander if e.label.startswith("[")}
    assert cards["[2]"].proto.expanded
    assert not cards["[1]"].proto.expanded


def test_follow_up_keeps_history_and_clear_resets(fake_kb: Path) -> None:
    at = _ask(_app(fake_kb), "How long does the battery last?")
    at = _ask(at, "And how long does charging take?")
    _no_exceptions(at)
    assert len(at.chat_message) == 4
    at.sidebar.button[0].click().run()  # Clear conversation
    assert len(at.chat_message) == 0


def test_generator_setting_reaches_the_sdk(fake_kb: Path) -> None:
    at = _app(fake_kb)
    at.sidebar.selectbox(key="generator").set_value("Extractive (no model)").run()
    at = _ask(at, "How long does the battery last on a full charge?")
    _no_exceptions(at)
    answer = at.session_state["items"][-1].answer
    assert answer is not None and answer.model == "extractive"


def test_retrieval_debug_shows_retrievers_and_ranks(fake_kb: Path) -> None:
    at = _app(fake_kb, debug=True)
    at = _ask(at, "How long does the battery last?")
    _no_exceptions(at)
    table = at.dataframe[0].value
    assert {"rank", "retrievers", "in prompt"} <= set(table.columns)
    assert any("#1" in r for r in table["retrievers"])


def test_image_query_searches_with_the_picture(fake_kb: Path) -> None:
    at = _app(fake_kb)
    at.chat_input[0].upload("query.png", _png(), "image/png").run()
    _no_exceptions(at)
    item = at.session_state["items"][-1]
    assert item.image and item.hits, "the image search returned nothing"
    assert any(h.doc_name == "red.png" for h in item.hits)


def test_generator_error_is_shown_not_raised(fake_kb: Path) -> None:
    at = _ask(_app(fake_kb, model="no-such-model"), "How long does the battery last?")
    _no_exceptions(at)
    assert "unknown model" in at.chat_message[1].error[0].value


# -- knowledge base ---------------------------------------------------------------------------------------
def _kb_view(at: AppTest) -> AppTest:
    at.sidebar.radio(key="view").set_value("Knowledge base")
    return at.run()


def test_upload_ingest_list_and_remove(tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "guide.pdf", PAGES)
    at = _kb_view(_app(tmp_path / "kb"))
    assert any("empty" in i.value for i in at.info)
    at.file_uploader[0].set_value([("../../evil dir/guide.pdf", pdf.read_bytes(), "application/pdf"),
                                   ("fake.pdf", b"not a pdf", "application/pdf")])
    at.run()
    at.button(key="ingest").click().run()
    _no_exceptions(at)
    assert any("Ingested 1" in s.value for s in at.success)
    report = at.dataframe[0].value
    assert set(report["status"]) == {"ingested", "rejected"}
    assert (tmp_path / "kb" / "uploads" / "evil dir" / "guide.pdf").is_file()
    assert not (tmp_path / "evil dir").exists()
    docs = at.dataframe[1].value
    assert list(docs["document"]) == ["guide.pdf"]
    at.multiselect[0].set_value(["guide.pdf"]).run()
    at.button(key="remove").click().run()
    _no_exceptions(at)
    assert not any(d.value.shape[0] and "document" in d.value.columns for d in at.dataframe)


# -- pure helpers -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd.txt", "etc/passwd.txt"),
    ("/abs/path/x.md", "abs/path/x.md"),
    ("..\\..\\win\\x.pdf", "win/x.pdf"),
    (".hidden.pdf", "hidden.pdf"),
    ("a/./b/../c.pdf", "a/b/c.pdf"),
    ("weird\x00na<me>.pdf", "weirdna_me_.pdf"),
    ("..", "upload"),
])
def test_sanitize_name(name: str, expected: str) -> None:
    from ui.uploads import sanitize_name

    assert str(sanitize_name(name)) == expected


def test_target_path_never_leaves_root(tmp_path: Path) -> None:
    from ui.uploads import target_path

    for name in ("../x.pdf", "../../../../x.pdf", "/etc/x.pdf", "a/../../x.pdf", "....//x.pdf"):
        assert target_path(tmp_path, name).is_relative_to(tmp_path.resolve())


def test_check_content_rejects_wrong_type_size_and_content() -> None:
    from ui.uploads import check_content

    assert check_content("a.exe", b"MZ") is not None
    assert "empty" in (check_content("a.pdf", b"") or "")
    assert "PDF" in (check_content("a.pdf", b"hello") or "")
    assert "image" in (check_content("a.png", b"not png") or "")
    assert check_content("a.png", _png()) is None
    assert "limit" in (check_content("a.txt", b"x" * 2048, max_bytes=1024) or "")
    assert check_content("notes.md", b"# hi") is None


def test_same_name_other_bytes_gets_a_new_name(tmp_path: Path) -> None:
    from ui.uploads import save_uploads

    class File:
        def __init__(self, name: str, data: bytes) -> None:
            self.name, self.data = name, data

        def getvalue(self) -> bytes:
            return self.data

    first = save_uploads([File("n.txt", b"one")], tmp_path).saved[0]
    again = save_uploads([File("n.txt", b"one")], tmp_path).saved[0]
    other = save_uploads([File("n.txt", b"two")], tmp_path).saved[0]
    assert first == again and other.name == "n (2).txt"


def test_scale_bbox_and_highlight(tmp_path: Path) -> None:
    from PIL import Image

    from assistant.types import PageImage
    from ui.render import highlighted_thumbnail, scale_bbox

    assert scale_bbox((100, 200, 300, 400), (600, 800), (300, 400)) == (50, 100, 150, 200)
    assert scale_bbox((-5, 0, 9999, 10), (100, 100), (50, 50))[2] == 50
    Image.new("RGB", (300, 400), "white").save(tmp_path / "p.png")
    page = PageImage("d", 1, 600.0, 800.0, tmp_path / "p.png")
    image = highlighted_thumbnail(page, (100, 200, 300, 400))
    assert image is not None
    r, g, b = image.getpixel((100, 150))  # inside the box: tinted amber
    assert r > b + 20
    assert image.getpixel((250, 350)) == (255, 255, 255)  # outside: untouched


def test_answer_markdown_and_badges() -> None:
    from assistant.types import Answer, Citation, Source
    from ui.render import answer_markdown, with_badges

    source = Source(1, "manual.pdf", "d", 3, "text", "The battery lasts 12 hours.")
    citation = Citation(1, "manual.pdf", 3, "The battery lasts 12 hours.", True, 0.9, "It lasts 12 hours.")
    answer = Answer("How long?", "It lasts 12 hours [1].", (citation,), (source,))
    text = answer_markdown(answer)
    assert "## How long?" in text and "**manual.pdf**, page 3 (verified)" in text
    assert with_badges("a [1] b [2, 3]", {1: True}) == "a :blue-badge[1] b :orange-badge[2] :orange-badge[3]"


def test_cli_registers_ui_and_passes_the_kb(tmp_path: Path) -> None:
    from assistant.cli import build_parser
    from ui.cli import streamlit_command

    args = build_parser().parse_args(["ui", "--kb", str(tmp_path), "--port", "8600", "--model", "extractive"])
    command = streamlit_command(args)
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("ui/app.py")
    assert command[command.index("--server.port") + 1] == "8600"
    assert command[command.index("--") + 1:] == ["--kb", str(tmp_path.resolve()), "--model", "extractive"]


# -- real offline models ----------------------------------------------------------------------------------
@pytest.mark.integration
def test_real_offline_models_answer_with_citation(tmp_path: Path) -> None:
    """The default offline embedders (minilm-int8, the image tagger) and the extractive generator."""
    from assistant.sdk import Citeline

    docs = tmp_path / "docs"
    docs.mkdir()
    make_pdf(docs / "manual.pdf", PAGES)
    Citeline(tmp_path / "kb").ingest(docs)
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["base_config"] = UIConfig(kb_dir=str(tmp_path / "kb"), model="extractive")
    at.run()
    at = _ask(at, "How long does the battery last on a full charge?")
    _no_exceptions(at)
    answer = at.session_state["items"][-1].answer
    assert answer is not None and not answer.abstained, answer
    assert answer.citations and answer.citations[0].page == 1
    assert any("verified" in e.label for e in at.expander)


def test_a_contradicted_sentence_is_not_shown_and_its_reason_is(fake_kb: Path) -> None:
    reply = CITED + " Charging takes 12 hours with the supplied adapter [1]."
    at = _ask(_app(fake_kb, model=f"fake:{reply}"), "How long does the battery last and how long to charge?")
    _no_exceptions(at)
    assistant = at.chat_message[1]
    assert "Charging takes 12 hours" not in assistant.markdown[0].value
    assert any("1 contradicted" in c.value for c in assistant.caption)
    (panel,) = [e for e in at.expander if e.label.startswith("Checked and not shown")]
    line = panel.markdown[0].value
    assert ":red-badge[contradicted]" in line and "12" in line and "number" in line
