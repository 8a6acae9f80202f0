"""`citeline eval verify --dataset scifact-claims:DIR | cases:FILE [--entailment SPEC] [--json]`: the verifier
benchmark. Every case goes through the product's own path: the claim is the model's answer, cited as `[1]`
against its source, and `Verifier.verify` decides (abstention detection, claim parsing, entailment, verdicts).

SciFact: each claim against its gold rationale sentences (SUPPORT must be kept, CONTRADICT rejected) and each
claim without evidence (NEI) against the first sentences of its cited abstract (must be rejected).
Cases file: one JSON object a line, `{"source", "question", "answer", "expect", "kind"}`, `expect` one of
supported / unsupported / contradicted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.citations import Verifier, VerifySettings
from assistant.types import Source
from eval.jsonl import numbered_rows

NEI_SENTENCES = 3  # an NEI claim is cited against this many leading sentences of its abstract


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    source: str
    question: str
    answer: str
    expect: str  # supported | unsupported | contradicted


def load_cases(path: Path) -> list[Case]:
    cases = []
    for i, row in numbered_rows(path):
        missing = [k for k in ("source", "answer") if not isinstance(row, dict) or k not in row]
        if missing:
            raise ValueError(f"{path}:{i}: missing {', '.join(missing)}")
        if row.get("expect") not in ("supported", "unsupported", "contradicted"):
            raise ValueError(f"{path}:{i}: expect must be supported, unsupported or contradicted")
        cases.append(Case(str(row.get("id", i)), row.get("kind", "case"), row["source"], row.get("question", ""),
                          row["answer"], row["expect"]))
    return cases


def scifact_cases(folder: Path) -> list[Case]:
    abstracts = {}
    for line in (folder / "corpus_sentences.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        abstracts[str(row["doc_id"])] = row["abstract"]
    cases = []
    for line in (folder / "claims_dev.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        claim = row["claim"].strip()
        answer = f"{claim.rstrip('.')} [1]."
        if row["evidence"]:
            doc, sets = next(iter(row["evidence"].items()))
            ids = sorted({i for s in sets for i in s["sentences"]})
            source = " ".join(abstracts[doc][i].strip() for i in ids)
            label = sets[0]["label"]
            expect, kind = ("supported", "SUPPORT") if label == "SUPPORT" else ("contradicted", "CONTRADICT")
        else:
            doc = str(row["cited_doc_ids"][0])
            source = " ".join(s.strip() for s in abstracts[doc][:NEI_SENTENCES])
            expect, kind = "unsupported", "NEI"
        cases.append(Case(str(row["id"]), kind, source, "", answer, expect))
    return cases


def verdict_of(verifier: Verifier, case: Case) -> tuple[str, str]:
    """The product's verdict on the case's answer: `supported` only when it would be shown verified."""
    source = Source(1, "source", "d", 1, "text", case.source)
    result = verifier.verify(case.answer, [source], case.question)
    if not result.abstained and result.citations:
        return "supported", result.citations[0].reason
    if result.checks:
        check = result.checks[0]
        return check.verdict, check.reason
    return "unsupported", "abstention: the verifier read the answer as 'not found'"


def run(cases: Sequence[Case], verifier: Verifier) -> dict[str, Any]:
    rows, started = [], time.perf_counter()
    for case in cases:
        got, reason = verdict_of(verifier, case)
        rows.append({"id": case.id, "kind": case.kind, "expect": case.expect, "got": got, "reason": reason,
                     "answer": case.answer})
    elapsed = time.perf_counter() - started
    return {"backend": verifier.entailment.name, "cases": len(rows), "seconds": round(elapsed, 2),
            **summarise(rows), "rows": rows}


def summarise(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    rows = list(rows)
    right = [r for r in rows if r["expect"] == "supported"]
    wrong = [r for r in rows if r["expect"] != "supported"]
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_kind[r["kind"]].append(r)
    kinds = {}
    for kind, group in sorted(by_kind.items()):
        ok = sum((r["got"] == "supported") == (r["expect"] == "supported") for r in group)
        kinds[kind] = {"n": len(group), "correct": ok, "rate": round(ok / len(group), 4),
                       "expect": dict(Counter(r["expect"] for r in group))}
    confusion = Counter(f"{r['expect']}->{r['got']}" for r in rows)
    return {
        "kept_right": _rate(sum(r["got"] == "supported" for r in right), len(right)),
        "rejected_wrong": _rate(sum(r["got"] != "supported" for r in wrong), len(wrong)),
        "three_way_accuracy": _rate(sum(r["got"] == r["expect"] for r in rows), len(rows)),
        "contradicted_as_contradicted": _rate(sum(r["got"] == "contradicted" for r in rows
                                                  if r["expect"] == "contradicted"),
                                              sum(r["expect"] == "contradicted" for r in rows)),
        "by_kind": kinds, "confusion": dict(sorted(confusion.items())),
    }


def _rate(k: int, n: int) -> dict[str, Any]:
    return {"k": k, "n": n, "rate": round(k / n, 4) if n else None}


def markdown(result: dict[str, Any]) -> str:
    def pct(r: dict[str, Any]) -> str:
        return "n/a" if r["rate"] is None else f"{r['rate']:.3f} ({r['k']}/{r['n']})"

    lines = [f"# Verifier benchmark — backend `{result['backend']}`, {result['cases']} cases, {result['seconds']} s",
             "", f"- right claims kept: {pct(result['kept_right'])}",
             f"- wrong claims rejected: {pct(result['rejected_wrong'])}",
             f"- three-way verdict accuracy: {pct(result['three_way_accuracy'])}", "",
             "| kind | n | correct | rate |", "|---|---|---|---|"]
    lines += [f"| {k} | {v['n']} | {v['correct']} | {v['rate']:.3f} |" for k, v in result["by_kind"].items()]
    misses = [r for r in result["rows"] if (r["got"] == "supported") != (r["expect"] == "supported")]
    if misses:
        lines += ["", "## Misses", ""]
        lines += [f"- `{r['id']}` {r['kind']}: expected {r['expect']}, got {r['got']} — {r['answer']} ({r['reason']})"
                  for r in misses[:40]]
    return "\n".join(lines)


def register(eval_sub: Any) -> None:
    p = eval_sub.add_parser("verify", help="the verifier on SciFact rationales or an adversarial cases file")
    p.add_argument("--dataset", required=True, metavar="KIND:PATH", help="scifact-claims:DIR or cases:FILE")
    p.add_argument("--entailment", default="checks", metavar="SPEC", help="checks (default) | nli:ID | judge")
    p.add_argument("--model", default="qwen", help="the generator for --entailment judge")
    p.add_argument("--text-model", default="minilm-q8", help="embedder for the checks' synonyms ('none': off)")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a VerifySettings field (coverage=0.75, semantic=0.7, ...)")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    kind, _, raw = args.dataset.partition(":")
    path = Path(raw).expanduser()
    if kind not in ("scifact-claims", "cases") or not raw:
        print("citeline: error: --dataset must be scifact-claims:DIR or cases:FILE", file=sys.stderr)
        return 2
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such dataset")
    try:
        cases = scifact_cases(path) if kind == "scifact-claims" else load_cases(path)
    except (ValueError, KeyError, OSError) as exc:
        print(f"citeline: error: {exc}", file=sys.stderr)
        return 2
    cases = cases[: args.limit] if args.limit else cases
    options: dict[str, Any] = {}
    for pair in args.option:
        key, _, value = pair.partition("=")
        options[key] = value if key in ("entailment", "mode") else float(value)
    settings = VerifySettings(entailment=args.entailment, **options)
    embedder = None
    if args.text_model != "none":
        from retrieval.embedders import build_text_embedder

        embedder = build_text_embedder(args.text_model)
    generator = None
    if args.entailment == "judge":
        from assistant.generators import build_generator

        generator = build_generator(args.model)
    result = run(cases, Verifier(settings, embedder, generator=generator))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(markdown(result))
    return 0
