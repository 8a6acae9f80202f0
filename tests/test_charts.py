"""Cited charts: the cell parser (property-based and awkward formats), stacked-row separation, table-to-series on
real PDFs from ../shared/data (a real KB: SQLite catalog, FAISS index, the offline text embedder), the verifier
of plotted values, the rendered PNG/SVG, and every surface: SDK, CLI (a real subprocess), HTTP (uvicorn on
loopback) and the Streamlit UI (AppTest).

Expected values are written from the pages' text by hand, never produced by the code under test."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant.charts import numbers
from assistant.charts.build import _one_unit
from assistant.charts.numbers import CellValue, header_unit, parse_cell
from assistant.charts.select import is_chart_request, select
from assistant.charts.tables import from_markdown, split_labels
from assistant.charts.types import ChartPoint, ChartSeries
from tests.conftest import ROOT, SHARED_DATA, free_port, needs_data

DOCS = SHARED_DATA / "mmlongbench-dev" / "documents"
HAMILTON = DOCS / "698bba535087fa9a7f9009e172a7f763.pdf"  # p.12 census table, p.15 farms table
ITC = DOCS / "f86d073b0d735ac873a65d906ba82758.pdf"  # ITC report on corporate governance 2007
POPULATION = {"1870": 130, "1880": 8267, "1890": 14096, "1900": 13330, "1910": 13459, "1920": 13237, "1930": 12159,
              "1940": 9982, "1950": 8778, "1960": 8714, "1970": 8867, "1980": 9301, "1990": 8862, "2000": 9403}


# -- the cell parser ----------------------------------------------------------------------------------------
def _group(digits: str, indian: bool) -> str:
    if len(digits) <= 3:
        return digits
    head, tail = digits[:-3], digits[-3:]
    size = 2 if indian else 3
    parts = []
    while head:
        parts.insert(0, head[-size:])
        head = head[:-size]
    return ",".join(parts + [tail])


@given(whole=st.integers(min_value=0, max_value=10**12), decimals=st.sampled_from(["", "0", "5", "25", "125"]),
       grouping=st.sampled_from(["none", "western", "indian"]), currency=st.sampled_from(["", "$", "€", "£", "Rs. "]),
       negative=st.sampled_from(["", "-", "−", "–", "()"]), percent=st.booleans(),
       footnote=st.sampled_from(["", "*", "**", "†", "¹"]))
def test_parse_cell_reads_awkward_formats(whole: int, decimals: str, grouping: str, currency: str, negative: str,
                                         percent: bool, footnote: str) -> None:
    digits = str(whole)
    body = digits if grouping == "none" else _group(digits, grouping == "indian")
    number = body + (f".{decimals}" if decimals else "")
    if percent:
        currency = ""
    text = f"{currency}{number}{'%' if percent else ''}"
    if negative == "()":
        text = f"({text})"
    elif negative:
        text = f"{negative}{text}"
    text += footnote
    expected = Decimal(digits + (f".{decimals}" if decimals else "")) * (-1 if negative else 1)
    value = parse_cell(text)
    assert value is not None, text
    assert value.value == pytest.approx(float(expected), rel=1e-12, abs=1e-12), text
    want_unit = "%" if percent else {"": "", "$": "USD", "€": "EUR", "£": "GBP", "Rs. ": "INR"}[currency]
    assert value.unit == want_unit, text


@pytest.mark.parametrize(("text", "value", "unit"), [
    ("4,31,952", 431952, ""), ("1,22,01,72,195", 1220172195, ""), ("310*", 310, ""), ("265**", 265, ""),
    ("(12.0)%", -12.0, "%"), ("12.5 %", 12.5, "%"), ("–0.8%", -0.8, "%"), ("+97", 97, ""), ("1.234,56", 1234.56, ""),
    ("$1.2bn", 1.2, "USD"), ("€ 3,400", 3400, "EUR"), ("343.25", 343.25, ""), ("0.00", 0.0, ""), ("2¹", 2, ""),
    ("45 percent", 45, "%"), ("USD 12", 12, "USD"), ("85.2 ± 0.3", 85.2, ""), ("61.5±1.2%", 61.5, "%"),
    ("1 234", None, ""), ("12,34,5", None, ""), ("3,5,7", None, ""),
    ("1999-00", None, ""), ("1 – 5000", None, ""), ("(12", None, ""), ("abc", None, ""), ("NA", None, ""),
    ("Nil", None, ""), ("12 hours", None, ""), ("10 to 20", None, ""),
])
def test_parse_cell_table(text: str, value: float | None, unit: str) -> None:
    got = parse_cell(text)
    if value is None:
        assert got is None, (text, got)
    else:
        assert got is not None and got.value == pytest.approx(value) and got.unit == unit, (text, got)


@pytest.mark.parametrize("text", ["NA", "N/A", "Nil", "nil.", "—", "–", "-", "", "n.a."])
def test_missing_markers(text: str) -> None:
    assert numbers.is_missing(text) and parse_cell(text) is None


@pytest.mark.parametrize(("header", "unit", "scale"), [
    ("Dividend (%)", "%", ""), ("High (Rs.)", "INR", ""), ("Total Dividend (Rs. in Lakhs)", "INR", "lakh"),
    ("Volume in 000’s (Nos.)", "", "thousand"), ("Revenue ($ millions)", "USD", "million"),
    ("Weight (kg)", "kilogram", ""), ("Percentage of shares", "%", ""), ("No. of Shareholders", "", ""),
    ("Battery life (hours)", "hour", ""),
])
def test_units_in_headers(header: str, unit: str, scale: str) -> None:
    got = header_unit(header)
    assert (got.unit, got.scale) == (unit, scale)


def test_a_header_unit_applies_to_bare_cells() -> None:
    cell = parse_cell("31", header_unit("Percentage to total no. of Directors"))
    assert cell == CellValue(31.0, "31", "%", "")


# -- stacked rows -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "n", "expected"), [
    ("1870 1880 1890", 3, ["1870", "1880", "1890"]),
    ("April 2002 May 2002 June 2002", 3, ["April 2002", "May 2002", "June 2002"]),
    ("2006 APRIL MAY 2007 JANUARY", 3, ["APRIL 2006", "MAY 2006", "JANUARY 2007"]),
    ("Mr. O.P. Vaish Mr. Lalit Bhasin Mr. Anup N. Kothari", 3, ["Mr. O.P. Vaish", "Mr. Lalit Bhasin",
                                                                "Mr. Anup N. Kothari"]),
    ("Executive Directors Non-Executive Independent Directors Other Non-Executive Directors", 3, None),
    ("P. B. Ramanujam S. B. Mathur B. Vijayaraghavan", 3, None),  # equal groups of words: a guess, refused
])
def test_split_labels(text: str, n: int, expected: list[str] | None) -> None:
    assert split_labels(text, n) == expected


def test_tokens_of_a_stacked_cell() -> None:
    assert numbers.tokens("390.00 397.00 NA 1,597 –0.8% (12) 310*") == \
        ["390.00", "397.00", "NA", "1,597", "–0.8%", "(12)", "310*"]
    assert numbers.tokens("Mr. Shah 12") == [] and numbers.tokens("1 – 5000") == [] and numbers.tokens("2006-07") == []


MARKDOWN = """| Year | Number of Farms |
|---|---|
| 1850 1860 1870 1880 1890 | NA NA NA 1,597 2,039 |"""


def test_markdown_table_unstacked_and_selected() -> None:
    table = from_markdown([(7, MARKDOWN)], doc="farms.pdf", doc_id="d", page=15, bbox=(1.0, 2.0, 3.0, 4.0))
    assert table is not None and table.columns == ("Year", "Number of Farms") and not table.notes
    assert [(r[0].text, r[1].text) for r in table.rows] == [("1850", "NA"), ("1860", "NA"), ("1870", "NA"),
                                                          ("1880", "1,597"), ("1890", "2,039")]
    assert (table.rows[3][1].chunk, table.rows[3][1].row, table.rows[3][1].part) == (7, 1, 3)
    sel = select(table, "Plot the number of farms by year")
    assert (sel.x_col, sel.value_cols) == (0, (1,))
    assert select(table, "Plot the number of employees by year").value_cols == ()


def test_units_are_never_mixed_on_one_axis() -> None:
    def series(name: str, unit: str) -> ChartSeries:
        return ChartSeries(name, unit, (ChartPoint(name, "a", 1.0, unit, "1", "d.pdf", "d", 1, None, "a", name),))

    missing: list[str] = []
    kept = _one_unit([series("Nos.", ""), series("%", "%"), series("Total", "")], missing)
    assert [s.name for s in kept] == ["Nos.", "Total"]
    assert len(missing) == 1 and "units are not mixed" in missing[0] and missing[0].startswith("%")


@pytest.mark.parametrize(("text", "wanted"), [
    ("Plot revenue by year", True), ("Show the results as a bar chart", True), ("bar chart of the shares", True),
    ("Can you plot the population?", True), ("What does the chart on page 3 show?", False),
    ("How many farms were there in 1900?", False),
])
def test_chart_requests_are_recognised(text: str, wanted: bool) -> None:
    assert is_chart_request(text) is wanted


# -- real PDFs, a real KB ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if not (HAMILTON.is_file() and ITC.is_file()):
        pytest.skip(f"public test data missing: {DOCS} not found (README.md, 'Test data', says where it comes from)")
    from assistant.config import Settings
    from assistant.sdk import Citeline
    from retrieval.settings import KBSettings

    root = tmp_path_factory.mktemp("charts") / "kb"
    settings = Settings(kb_dir=root, kb=KBSettings(image_model="fake", tag_images=False),
                        model="fake:The census counted 9,403 people in 2000 [1].")
    sdk = Citeline(root, settings=settings).ingest(HAMILTON, ITC)
    assert sdk.last_report is not None and sdk.last_report.totals["failed"] == 0
    yield sdk
    sdk.close()


def _ruled_table_pdf(path: Path, title: str, *pages: list[list[str]], tops: tuple[float, ...] = ()) -> Path:
    """A PDF with a ruled table on each page (drawn cell borders, as ingest's table finder expects), each
    starting at its `tops` y (140 by default) with the title above it."""
    import pymupdf

    doc = pymupdf.open()
    for k, rows in enumerate(pages):
        page = doc.new_page(width=612, height=792)
        top = tops[k] if k < len(tops) else 140.0
        if top > 100:
            page.insert_text((72, top - 30), title, fontsize=13)
        for i, row in enumerate(rows):
            for j, cell in enumerate(row):
                rect = pymupdf.Rect(72 + j * 110, top + i * 22, 72 + (j + 1) * 110, top + (i + 1) * 22)
                page.draw_rect(rect, color=(0, 0, 0), width=0.7)
                page.insert_text((rect.x0 + 4, rect.y1 - 7), cell, fontsize=10)
    doc.save(str(path))
    return path


@pytest.fixture(scope="module")
def made_kb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A year-per-column statement in a generated PDF and a Markdown table in a text document."""
    from assistant.config import Settings
    from assistant.sdk import Citeline
    from retrieval.settings import KBSettings

    root = tmp_path_factory.mktemp("made")
    docs = root / "docs"
    docs.mkdir()
    _ruled_table_pdf(docs / "acme 10-K.pdf", "Selected financial data", [
        ["($ in millions)", "2021", "2022", "2023"], ["Net sales", "$1,234", "$1,456", "$1,789"],
        ["Operating income", "(45)", "120", "210"], ["Net income", "12", "80", "150"]])
    _ruled_table_pdf(docs / "museum.pdf", "Museum visitors (thousands), continued overleaf",
                     [["Year", "Visitors"], ["2015", "120"], ["2016", "135"], ["2017", "150"]],
                     [["Year", "Visitors"], ["2018", "162"], ["2019", "171"], ["2020", "40"]], tops=(620, 60))
    _ruled_table_pdf(docs / "committees.pdf", "Audit committee attendance",  # two tables, one header: not one table
                     [["Member", "Meetings attended"], ["A. Rao", "4"], ["B. Sen", "3"]],
                     [["Member", "Meetings attended"], ["C. Das", "2"], ["D. Roy", "5"]], tops=(300, 300))
    (docs / "battery.md").write_text("# Battery report\n\nMeasured battery life by mode.\n\n"
                                     "| Mode | Battery life (hours) |\n"
                                     "|---|---|\n| Eco | 41 |\n| Normal | 28.5 |\n| Performance | 12 |\n",
                                     encoding="utf-8")
    settings = Settings(kb_dir=root / "kb", kb=KBSettings(image_model="fake", tag_images=False), model="fake:x [1].")
    sdk = Citeline(root / "kb", settings=settings).ingest(docs)
    yield sdk
    sdk.close()


def test_year_per_column_statement_is_read_by_rows(made_kb: Any) -> None:
    chart = made_kb.chart("Plot operating income and net income by year")
    assert [s.name for s in chart.series] == ["Operating income", "Net income"] and chart.mark == "line"
    assert [(p.x, p.y) for p in chart.series[0].points] == [("2021", -45.0), ("2022", 120.0), ("2023", 210.0)]
    assert [(p.x, p.y) for p in chart.series[1].points] == [("2021", 12.0), ("2022", 80.0), ("2023", 150.0)]
    assert all(p.verified and p.checked == "catalog+pdf" and p.row == p.series and p.column == p.x
               for p in chart.points)
    assert chart.y_title == "$ in millions" and chart.x_title == "Year"
    single = made_kb.chart("Plot net sales by year")
    assert [(p.x, p.y, p.unit) for p in single.points] == [("2021", 1234.0, "USD"), ("2022", 1456.0, "USD"),
                                                           ("2023", 1789.0, "USD")]


def test_a_table_continued_on_the_next_page(made_kb: Any) -> None:
    chart = made_kb.chart("Plot the number of museum visitors by year")
    assert [(p.x, p.y, p.page) for p in chart.points] == [("2015", 120, 1), ("2016", 135, 1), ("2017", 150, 1),
                                                          ("2018", 162, 2), ("2019", 171, 2), ("2020", 40, 2)]
    assert [t.page for t in chart.sources] == [1, 2] and "pages 1–2" in chart.caption
    assert all(p.verified and p.checked == "catalog+pdf" for p in chart.points)
    alone = made_kb.chart("Plot the audit committee meetings attended by each member")
    assert [(p.x, p.y) for p in alone.points] in ([("A. Rao", 4), ("B. Sen", 3)], [("C. Das", 2), ("D. Roy", 5)])


def test_markdown_table_in_a_text_document(made_kb: Any) -> None:
    chart = made_kb.chart("Compare battery life across the modes as a bar chart")
    assert [(p.x, p.y) for p in chart.points] == [("Eco", 41.0), ("Normal", 28.5), ("Performance", 12.0)]
    assert chart.mark == "bar" and chart.series[0].unit == "hour" and chart.y_title == "Battery life (hours)"
    assert all(p.doc == "battery.md" and p.verified and p.checked == "catalog" for p in chart.points)
    assert made_kb.chart("Plot the number of employees by year").refused


@needs_data("mmlongbench-dev")
def test_table_to_series_on_a_real_pdf(kb: Any) -> None:
    chart = kb.chart("Plot the total population by census year")
    assert not chart.refused and chart.mark == "line"
    assert {p.x: p.y for p in chart.points} == POPULATION
    for p in chart.points:  # every point cites its cell and was found again there and on the printed page
        assert (p.doc, p.page, p.column, p.row) == (HAMILTON.name, 12, "Total Population", p.x)
        assert p.bbox is not None and p.verified and p.checked == "catalog+pdf"
    assert chart.sources[0].page == 12 and chart.x_title == "Census Year" and chart.y_title == "Total Population"
    assert HAMILTON.name in chart.caption and "page 12" in chart.caption
    assert chart.spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/")


@needs_data("mmlongbench-dev")
def test_values_the_table_does_not_give_are_named_not_plotted(kb: Any) -> None:
    chart = kb.chart("Chart the number of farms by year")
    assert [(p.x, p.y) for p in chart.points] == [("1880", 1597), ("1890", 2039), ("1900", 2049), ("1910", 1944),
                                                  ("1920", 1882), ("1930", 1766), ("1950", 1453)]
    assert sorted(m.split(" for ")[1][:4] for m in chart.missing) == ["1850", "1860", "1870", "1940"]
    assert "Not plotted" in chart.text and "'NA'" in chart.text


@needs_data("mmlongbench-dev")
def test_stacked_labels_are_separated_by_the_page_layout(kb: Any) -> None:
    chart = kb.chart("Plot the number of ITC directors in each category")  # p.3: one text cell holds 3 labels
    assert [(p.x, p.y) for p in chart.points] == [("Executive Directors", 4),
                                                  ("Non-Executive Independent Directors", 7),
                                                  ("Other Non-Executive Directors", 2)]
    assert chart.mark == "bar" and chart.sources[0].page == 3


@needs_data("mmlongbench-dev")
def test_monthly_series_with_year_markers_and_two_columns(kb: Any) -> None:
    chart = kb.chart("Compare the monthly high prices on NSE and BSE")
    assert [s.name for s in chart.series] == ["NSE High (Rs.)", "BSE High (Rs.)"]
    nse, bse = ({p.x: p.y for p in s.points} for s in chart.series)
    assert nse["APRIL 2006"] == 208.50 and nse["MARCH 2007"] == 175.00 and bse["MAY 2006"] == 212.70
    assert len(nse) == len(bse) == 12 and chart.series[0].unit == "INR"


@needs_data("mmlongbench-dev")
def test_no_table_holds_it_refusal_lists_closest_tables(kb: Any) -> None:
    chart = kb.chart("Plot the number of employees by year")
    assert chart.refused and not chart.points and not chart.spec
    assert chart.text.startswith("No table in your documents holds this data") and chart.closest
    assert "Closest tables" in chart.text and chart.closest[0].label in chart.text


@needs_data("mmlongbench-dev")
def test_a_value_not_in_its_cited_cell_is_rejected(kb: Any) -> None:
    from assistant.charts import ChartMaker
    from assistant.charts.verify import CellChecker

    maker = ChartMaker(kb.kb, kb.search)
    table = next(t for t in maker.tables("census year total population")
                 if t.columns == ("Census Year", "Total Population"))
    row = next(r for r in table.rows if r[0].text == "1900")
    checker = CellChecker(kb.kb.catalog)
    assert checker.check(table, row[1], CellValue(13330.0, "13,330"))[0]
    ok, _, why = checker.check(table, row[1], CellValue(13331.0, "13,331"))
    assert not ok and "not in the cited cell" in why
    ok, _, why = checker.check(table, row[1], CellValue(1333.0, "13,330"))  # right text, wrong number
    assert not ok and "does not read as" in why


@needs_data("mmlongbench-dev")
def test_rendered_png_and_svg(kb: Any, tmp_path: Path) -> None:
    from PIL import Image

    chart = kb.chart("Plot the total population by census year")
    for scale in (1.0, 2.0):
        data = chart.png(scale=scale)
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        image = Image.open(io.BytesIO(data))
        assert image.size == (int(640 * scale), int(360 * scale))
        assert len([n for n in image.convert("L").histogram() if n]) > 10  # drawn, not blank
    svg = chart.save(tmp_path / "population.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<svg") and "Total Population" in svg and "Census Year" in svg
    spec = json.loads(chart.save(tmp_path / "population.json").read_text(encoding="utf-8"))
    assert len(spec["series"][0]["points"]) == 14 and spec["spec"]["mark"]["type"] == "line"


@needs_data("mmlongbench-dev")
def test_cli_ask_chart_writes_png_and_json(kb: Any, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "assistant.cli", "ask", *args, "--kb", str(kb.kb_dir)],
                              capture_output=True, text=True, cwd=ROOT, timeout=240, check=False)

    out = tmp_path / "farms.png"
    done = run("Chart the number of farms by year", "--chart", str(out))
    assert done.returncode == 0, done.stderr
    assert "Plotted Number of Farms by Year" in done.stdout and f"source: {HAMILTON.name} p.15" in done.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    done = run("Plot the total population by census year", "--chart", str(tmp_path / "p.json"), "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert {p["x"]: p["y"] for p in data["series"][0]["points"]} == POPULATION
    assert data["spec"]["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    done = run("Plot the number of employees by year", "--chart", str(tmp_path / "none.png"))
    assert done.returncode == 1 and "No table in your documents holds this data" in done.stdout
    assert not (tmp_path / "none.png").exists()


@needs_data("mmlongbench-dev")
def test_http_ask_with_chart_returns_the_spec(kb: Any) -> None:
    pytest.importorskip("uvicorn")
    import httpx

    from assistant.server.app import create_app
    from tests.conftest import serving

    with serving(create_app(kb, api_key=None)) as base:
        response = httpx.post(f"{base}/v1/ask", json={"question": "Plot the total population by census year",
                                                      "chart": True}, timeout=120)
        assert response.status_code == 200, response.text
        body = response.json()
        chart = body["chart"]
        assert "answer" in body and chart["refused"] is False
        assert chart["spec"]["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
        assert {p["x"]: p["y"] for p in chart["series"][0]["points"]} == POPULATION
        assert all(p["verified"] and p["page"] == 12 and p["bbox"] for p in chart["series"][0]["points"])
        plain = httpx.post(f"{base}/v1/ask", json={"question": "How many people lived there in 2000?"}, timeout=120)
        assert plain.status_code == 200 and "chart" not in plain.json()


@needs_data("mmlongbench-dev")
def test_ui_shows_the_chart_under_the_answer(kb: Any) -> None:
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    from ui.state import UIConfig

    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=120)
    at.session_state["base_config"] = UIConfig(kb_dir=str(kb.kb_dir), image_model="fake",
                                               model="fake:The census counted 9,403 people in 2000 [1].")
    at.run()
    at.chat_input[0].set_value("Plot the total population by census year").run()
    assert not at.exception, [e.value for e in at.exception]
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    proto = charts[0].proto
    spec = json.loads(proto.spec)
    assert spec["mark"]["type"] == "line" and spec["encoding"]["y"]["title"] == "Total Population"
    import pyarrow as pa  # Streamlit ships the chart's rows as an Arrow table beside the spec

    rows = pa.ipc.open_stream(proto.data.data).read_all().to_pylist()
    assert {r["x"]: r["y"] for r in rows} == POPULATION
    assert all(r["source"] == f"{HAMILTON.name} p.12" for r in rows)
    text = " ".join(m.value for m in at.markdown)
    assert "Plotted Total Population by Census Year" in text
    assert any(HAMILTON.name in e.label and "page 12" in e.label for e in at.expander)  # the table in the panel


@pytest.mark.browser
@needs_data("mmlongbench-dev")
def test_browser_draws_the_chart(kb: Any, tmp_path: Path) -> None:
    """The real app (`citeline ui`) on loopback in headless Chromium: the chart is drawn and screenshotted."""
    from tests import test_ui_browser as b

    reason = b._requirements()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    port = free_port()
    command = [sys.executable, "-m", "assistant.cli", "ui", "--kb", str(kb.kb_dir), "--port", str(port), "--headless",
               "--image-model", "fake", "--model", "fake:The census counted 9,403 people in 2000 [1]."]
    with (tmp_path / "app.log").open("wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**__import__("os").environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"})
        options = webdriver.ChromeOptions()
        options.binary_location = str(b.CHROMIUM)
        for flag in (*b.CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
            options.add_argument(flag)
        driver = None
        try:
            b._wait_healthy(port, proc)
            driver = webdriver.Chrome(service=Service(executable_path=str(b.CHROMEDRIVER)), options=options)
            driver.set_window_size(*b.WINDOW)
            driver.get(f"http://127.0.0.1:{port}")
            box = b._wait_css(driver, "textarea[data-testid='stChatInputTextArea']", timeout=60)
            box.send_keys("Plot the total population by census year", Keys.ENTER)
            b._wait_text(driver, "Plotted Total Population by Census Year", timeout=120)
            from selenium.webdriver.support import expected_conditions as ec
            from selenium.webdriver.support.ui import WebDriverWait

            drawn = "[data-testid='stVegaLiteChart'] canvas, [data-testid='stVegaLiteChart'] svg"
            try:
                chart = WebDriverWait(driver, 60).until(ec.presence_of_element_located((By.CSS_SELECTOR, drawn)))
            except Exception:
                driver.save_screenshot(str(tmp_path / "no-chart.png"))
                raise
            assert chart.size["width"] > 300 and chart.size["height"] > 150
            b._shot(driver, "05-cited-chart")
            assert (b.ARTIFACTS / "05-cited-chart.png").stat().st_size > 10_000
            assert driver.find_elements(By.XPATH, f"//*[contains(text(), '{HAMILTON.name}')]")
        finally:
            if driver is not None:
                driver.quit()
            b._kill_group(proc)


@pytest.mark.parametrize(("text", "span"), [("from 1900 to 1950", (1900, 1950)),
                                            ("between 2019 and 2023", (2019, 2023)),
                                            ("2019-2023", (2019, 2023)), ("in 2002-03", None), ("by year", None)])
def test_year_ranges_in_requests(text: str, span: tuple[int, int] | None) -> None:
    from assistant.charts.select import year_range

    assert year_range(text) == span


@needs_data("mmlongbench-dev")
def test_requested_mark_range_and_top_n(kb: Any) -> None:
    chart = kb.chart("Show the total population by census year between 1950 and 2000 as a bar chart")
    assert chart.mark == "bar" and [p.x for p in chart.points] == ["1950", "1960", "1970", "1980", "1990", "2000"]
    top = kb.chart("Plot the top 3 shareholders of ITC by percentage of shares held")
    assert [(p.x, p.y) for p in top.points] == [("Tobacco Manufacturers (India) Limited", 26.39),
                                                ("Life Insurance Corporation of India*", 12.70),
                                                ("Unit Trust of India*", 11.93)]


def test_eval_scores_series_precision_recall_and_refusals() -> None:
    from dataclasses import replace

    from assistant.charts.types import Chart, TableRef
    from eval.charts import ChartCase, load_cases, score_case, summarise

    case = ChartCase("c", "Plot farms by year", "mmlongbench-dev/documents/h.pdf", True, 15,
                     ((("1880", 1597.0), ("1890", 2039.0)),))
    ref = TableRef("h.pdf", "d", 15, None, ("Year", "Farms"))

    def chart(points: list[tuple[str, float]], page: int = 15) -> Chart:
        pts = tuple(ChartPoint("Farms", x, y, "", str(y), "h.pdf", "d", page, None, x, "Farms") for x, y in points)
        return Chart("q", "t", (ChartSeries("Farms", "", pts),), sources=(replace(ref, page=page),))

    exact = score_case(case, chart([("1880", 1597), ("1890", 2039)]))
    wrong = score_case(case, chart([("1880", 1597), ("1890", 2093)]))
    elsewhere = score_case(case, chart([("1880", 1597), ("1890", 2039)], page=14))
    absent = score_case(ChartCase("n", "Plot rain", "x.pdf", False), Chart("q", "no table", refused=True))
    made_up = score_case(ChartCase("m", "Plot rain", "x.pdf", False), chart([("1880", 1.0)]))
    assert exact["exact"] and not wrong["exact"] and not elsewhere["exact"] and elsewhere["correct"] == 0
    summary = summarise([exact, wrong, absent, made_up])
    assert summary["series_exact_match"] == 0.5 and summary["value_precision"] == round(3 / 5, 4)
    assert summary["value_recall"] == 0.75 and summary["refusal_rate"] == 0.5
    cases = load_cases(ROOT / "eval" / "data" / "chart_cases.jsonl")
    assert len(cases) >= 30 and sum(not c.answerable for c in cases) >= 5
    assert all(c.page and c.series for c in cases if c.answerable)
