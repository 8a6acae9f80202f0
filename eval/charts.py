"""`citeline eval charts --dataset cases:FILE [--data DIR] [--json]`: the chart benchmark.

Each case is a chart request over a real PDF with the expected series written by hand from the page
(`{"id", "question", "doc", "page", "series": [{"name", "points": [[x, y], ...]}], "answerable": true}`), or a
request whose data no table holds (`"answerable": false`). The KB holds every document the cases name
(cached); each request goes through `Citeline.chart`, the product's own path. Metrics:

    series exact-match   answerable requests whose plotted series equal the expected ones (labels and values)
    value precision      plotted values that are right (the expected page, label and value); values plotted
                         for a request whose data does not exist all count as wrong
    value recall         expected values that were plotted
    refusal rate         requests whose data does not exist that were refused (and, apart, answerable ones
                         that were refused)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.jsonl import numbered_rows

Point = tuple[str, float]


@dataclass(frozen=True)
class ChartCase:
    id: str
    question: str
    doc: str  # relative to the data folder
    answerable: bool
    page: int = 0
    series: tuple[tuple[Point, ...], ...] = ()


def load_cases(path: Path) -> list[ChartCase]:
    cases = []
    for i, row in numbered_rows(path):
        try:
            series = tuple(tuple((str(x), float(y)) for x, y in s["points"]) for s in row.get("series", ()))
            case = ChartCase(str(row.get("id", i)), row["question"], row["doc"], bool(row["answerable"]),
                             int(row.get("page", 0)), series)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{i}: not a chart case ({exc})") from None
        if case.answerable and not (case.series and case.page):
            raise ValueError(f"{path}:{i}: an answerable case needs page and series")
        cases.append(case)
    return cases


def norm_label(label: str) -> str:
    """Labels compare by their words: '2006 APRIL' = 'April 2006', '1 – 5000' = '1-5000'."""
    return " ".join(sorted(re.findall(r"[a-z0-9]+", label.lower())))


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def score_case(case: ChartCase, chart: Any) -> dict[str, Any]:
    """Per-request figures: plotted, correct, expected, found, exact, refused."""
    plotted = [(p.x, p.y) for p in chart.points]
    expected = [pt for s in case.series for pt in s]
    on_page = bool(chart.sources) and chart.sources[0].page == case.page and \
        Path(case.doc).name == Path(chart.sources[0].doc).name
    truth = {(norm_label(x), y) for x, y in expected}
    correct = [pt for pt in plotted if on_page and any(norm_label(pt[0]) == x and _same(pt[1], y) for x, y in truth)]
    found = [pt for pt in expected if on_page and any(norm_label(pt[0]) == norm_label(x) and _same(pt[1], y)
                                                      for x, y in plotted)]
    exact = False
    if case.answerable and on_page and len(chart.series) == len(case.series):
        got = [sorted((norm_label(p.x), p.y) for p in s.points) for s in chart.series]
        want = [sorted((norm_label(x), y) for x, y in s) for s in case.series]
        exact = all(any(len(g) == len(w) and all(a[0] == b[0] and _same(a[1], b[1]) for a, b in zip(g, w, strict=True))
                        for g in got) for w in want)
    return {"id": case.id, "answerable": case.answerable, "refused": chart.refused, "plotted": len(plotted),
            "correct": len(correct), "expected": len(expected), "found": len(found), "exact": exact,
            "source": chart.sources[0].label if chart.sources else None, "text": chart.text}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if r["answerable"]]
    absent = [r for r in rows if not r["answerable"]]
    plotted = sum(r["plotted"] for r in rows)
    expected = sum(r["expected"] for r in answerable)
    return {
        "requests": len(rows), "answerable": len(answerable), "absent": len(absent),
        "series_exact_match": _ratio(sum(r["exact"] for r in answerable), len(answerable)),
        "value_precision": _ratio(sum(r["correct"] for r in rows), plotted),
        "value_recall": _ratio(sum(r["found"] for r in answerable), expected),
        "refusal_rate": _ratio(sum(r["refused"] for r in absent), len(absent)),
        "false_refusals": _ratio(sum(r["refused"] for r in answerable), len(answerable)),
        "values_plotted": plotted, "values_expected": expected,
    }


def _ratio(n: float, d: float) -> float:
    return round(n / d, 4) if d else 0.0


def run(cases: list[ChartCase], data: Path, cache_dir: Path, log: Any = None) -> dict[str, Any]:
    from assistant.sdk import Citeline

    log = log or (lambda msg: print(msg, file=sys.stderr))
    kb_dir = build_kb(cases, data, cache_dir, log)
    rows, seconds = [], []
    with Citeline(kb_dir) as kb:
        for case in cases:
            start = time.perf_counter()
            try:
                chart = kb.chart(case.question)
            except Exception as exc:  # reported per request: a crash is a wrong answer, not the end of the run
                from assistant.charts import Chart

                chart = Chart(case.question, f"error: {type(exc).__name__}: {exc}", refused=True)
            seconds.append(time.perf_counter() - start)
            rows.append(score_case(case, chart))
    summary = summarise(rows)
    summary["seconds_per_request"] = round(sum(seconds) / max(1, len(seconds)), 3)
    return {"summary": summary, "cases": rows}


def build_kb(cases: list[ChartCase], data: Path, cache_dir: Path, log: Any) -> Path:
    """One KB with every document the cases name, cached by the list of documents."""
    from retrieval.kb import KnowledgeBase
    from retrieval.kb_writer import KBWriter
    from retrieval.settings import KBSettings

    docs = sorted({str((data / c.doc).resolve()) for c in cases})
    missing = [d for d in docs if not Path(d).is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: no such document (is --data the shared data folder?)")
    key = hashlib.sha256("|".join(docs).encode()).hexdigest()[:12]
    root = cache_dir / f"charts-{key}"
    done = root / "EVAL_COMPLETE"
    if not done.exists():
        import shutil

        shutil.rmtree(root, ignore_errors=True)
        log(f"building the chart KB at {root} from {len(docs)} documents (cached for later runs)")
        with KnowledgeBase.open(root, KBSettings(), writable=True) as kb:
            KBWriter(kb).run(docs)
        done.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
    return root


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = ["| metric | value |", "|---|---|"]
    lines += [f"| {k.replace('_', ' ')} | {v} |" for k, v in s.items()]
    lines += ["", "| case | exact | plotted | correct | expected | found | refused | source |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['id']} | {'yes' if r['exact'] else 'no'} | {r['plotted']} | {r['correct']} | {r['expected']} | "
              f"{r['found']} | {'yes' if r['refused'] else 'no'} | {r['source'] or ''} |" for r in result["cases"]]
    return "\n".join(lines)


def register(eval_sub: Any) -> None:
    p = eval_sub.add_parser("charts", help="cited charts: series exact-match, value precision/recall, refusals")
    p.add_argument("--dataset", default="cases:eval/data/chart_cases.jsonl", metavar="cases:FILE")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="the folder the cases' documents are relative to (default: ../shared/data)")
    p.add_argument("--cache-dir", default=None, metavar="DIR", help="where the eval KB is cached")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=cmd_charts)


def cmd_charts(args: argparse.Namespace) -> int:
    from eval.cli import default_cache_dir

    kind, _, raw = args.dataset.partition(":")
    if kind != "cases" or not raw:
        print("citeline: error: --dataset must be cases:FILE", file=sys.stderr)
        return 2
    try:
        cases = load_cases(Path(raw).expanduser())
    except (ValueError, OSError) as exc:
        print(f"citeline: error: {exc}", file=sys.stderr)
        return 2
    data = Path(args.data).expanduser() if args.data else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    cache = Path(args.cache_dir).expanduser() if args.cache_dir else default_cache_dir()
    result = run(cases, data, cache)
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    return 0
