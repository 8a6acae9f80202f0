"""End to end with `--kb postgresql://...`: `citeline ingest`, `search`, `ask --model extractive`, `status`,
`check` over real PDFs from ../shared/data, against the same commands on a local KB folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cli import main
from tests.conftest import SHARED_DATA, needs_data

FILES = ["pdfjs__TAMReview.pdf", "mmlb__GPL-Graduate-Studies-Professional-Learning-Brochure-Jul-2021.pdf",
         "ocrmypdf__francais.pdf"]
FAKE = ["--text-model", "fake", "--image-model", "fake"]
QUERIES = ["graduate professional learning courses", "review of the literature", "le texte français"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def _hits(capsys: pytest.CaptureFixture[str], kb: str, query: str, *extra: str) -> list[tuple[str, int, str]]:
    hits = _run(capsys, "search", query, "--kb", kb, "--top-k", "5", "--json", *extra)
    return [(h["doc"], h["page"], h["text"]) for h in hits]  # type: ignore[attr-defined]


@pytest.mark.slow
@needs_data("pdfs")
def test_cli_over_postgres_gives_the_local_hits(pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CITELINE_HOME", str(tmp_path / "home"))  # the server KB's assets folder lives here
    files = [str(SHARED_DATA / "pdfs" / f) for f in FILES]
    local = str(tmp_path / "kb")
    for kb in (local, pg_dsn):
        report = _run(capsys, "ingest", *files, "--kb", kb, *FAKE, "--no-ocr", "--json")
        assert report["totals"]["ingested"] == 3, report  # type: ignore[index]
    status = {kb: _run(capsys, "status", "--kb", kb, "--json") for kb in (local, pg_dsn)}
    assert status[local]["counts"] == status[pg_dsn]["counts"]  # type: ignore[index]
    assert _run(capsys, "check", "--kb", pg_dsn, "--json")["ok"] is True  # type: ignore[index]
    for query in QUERIES:
        # the same vectors, exact at this size: dense rankings are identical
        assert (_hits(capsys, pg_dsn, query, "--retriever", "dense")
                == _hits(capsys, local, query, "--retriever", "dense"))
        # hybrid: FTS5's BM25 and PostgreSQL's ts_rank order lexical matches differently, so the fused lists
        # agree on most hits, not on every rank
        pg, here = _hits(capsys, pg_dsn, query), _hits(capsys, local, query)
        assert pg[0] in here and here[0] in pg and len(set(pg) & set(here)) >= 3, (pg, here)
    answers = [_run(capsys, "ask", QUERIES[0], "--kb", kb, "--model", "extractive", "--json") for kb in (local, pg_dsn)]
    for answer in answers:  # a cited, verified answer from either store (its sources follow the hybrid ranking)
        assert not answer["abstained"] and answer["citations"], answer  # type: ignore[index]
        assert all(c["verified"] for c in answer["citations"])  # type: ignore[index]
    assert {c["doc"] for c in answers[1]["citations"]} == {c["doc"] for c in answers[0]["citations"]}  # type: ignore[index]
    assert _run(capsys, "ingest", *files, "--kb", pg_dsn, *FAKE, "--no-ocr", "--json")["totals"]["unchanged"] == 3  # type: ignore[index]
