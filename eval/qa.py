"""`citeline eval qa --dataset mmlongbench:PATH | scifact-claims:PATH [--json]`: answer quality, citations,
abstention and latency of Citeline against a LangChain-style "stuff the top hits into the prompt" baseline that
uses the same retriever and the same LLM, without verification.

MMLongBench answers are scored by `answer_format` (Int/Float numerically within a tolerance, percentages
normalised; Str normalised, fuzzy above a threshold; List element-wise, all elements needed); "Not answerable"
is correct only on abstention. Page citations are compared with the gold evidence pages.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from assistant.citations import is_abstention
from assistant.types import Sampling

STUFF_PROMPT = (
    "Use the following pieces of context to answer the question at the end. If you don't know the answer, "
    "just say that you don't know, don't try to make up an answer.\n\n{context}\n\nQuestion: {question}\n"
    "Helpful Answer:"
)
_NUM = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
_DONT_KNOW = re.compile(r"(?:don't|do not|doesn't|does not) know|not (?:sure|available)", re.I)


# -- scoring --------------------------------------------------------------------------------------------------
def _norm(text: str) -> str:
    text = re.sub(r"\[\d+\]", " ", text.lower())
    text = re.sub(r"[^\w\s%.]", " ", text)
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def _numbers(text: str) -> list[float]:
    out = []
    for m in _NUM.findall(re.sub(r"\[\d+\]", " ", text)):
        try:
            out.append(float(m.replace(",", "")))
        except ValueError:
            continue
    return out


def _number_match(gold: str, pred: str, rel: float = 0.01) -> bool:
    golds = _numbers(gold)
    if not golds:
        return False
    g = golds[0]
    candidates = {g, g / 100, g * 100} if "%" in gold else {g}
    return any(abs(p - c) <= max(rel * abs(c), 1e-6) for p in _numbers(pred) for c in candidates)


def _string_match(gold: str, pred: str, threshold: float = 0.8) -> bool:
    g, p = _norm(gold), _norm(pred)
    if not g:
        return False
    if g in p:
        return True
    if _NUM.fullmatch(g.replace("%", "").strip()):
        return _number_match(gold, pred)
    words = p.split()
    n = len(g.split())
    windows = [" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))]
    return max(SequenceMatcher(None, g, w).ratio() for w in windows) >= threshold


def score_answer(pred: str, abstained: bool, gold: str, answer_format: str) -> float:
    if answer_format == "None" or gold == "Not answerable":
        return 1.0 if abstained else 0.0
    if abstained:
        return 0.0
    if answer_format in ("Int", "Float"):
        return 1.0 if _number_match(gold, pred) else 0.0
    if answer_format == "List":
        try:
            items = [str(x) for x in ast.literal_eval(gold)]
        except (ValueError, SyntaxError):
            items = [gold]
        return 1.0 if items and all(_string_match(i, pred) for i in items) else 0.0
    return 1.0 if _string_match(gold, pred) else 0.0


# -- the two systems --------------------------------------------------------------------------------------------
@dataclass
class Prediction:
    text: str
    abstained: bool
    pages: set[int]
    first_token_s: float
    answer_s: float
    answerable: float | None = None  # the judge's log-odds, when the generator judged
    raw: str = ""  # the model's draft before verification
    checks: tuple[str, ...] = ()  # the verifier's verdict and reason on each sentence of the draft


def citeline_predict(answerer: Any, question: str, filters: Any) -> Prediction:
    a = answerer.ask(question, filters=filters)
    return Prediction(a.text, a.abstained, {c.page for c in a.citations if c.verified},
                      a.timings.get("first_token_s", a.timings.get("answer_s", 0.0)), a.timings.get("answer_s", 0.0),
                      a.answerable, a.raw_text, tuple(f"{c.verdict}: {c.sentence} — {c.reason}" for c in a.checks))


def baseline_predict(search: Callable[..., Sequence[Any]], generator: Any, question: str, filters: Any, k: int = 4,
                     sampling: Sampling | None = None) -> Prediction:
    """LangChain's `stuff` chain: the top-k hits, whole, in one prompt; sources = the pages it was given."""
    started = time.perf_counter()
    hits = list(search(question, k, filters))
    context = "\n\n".join(h.text for h in hits)
    messages = [{"role": "user", "content": STUFF_PROMPT.format(context=context, question=question)}]
    first, pieces = None, []
    for piece in generator.stream(messages, (), sampling or Sampling(max_tokens=160)):
        first = first if first is not None else time.perf_counter() - started
        pieces.append(piece)
    text = "".join(pieces).strip()
    abstained = not text or bool(_DONT_KNOW.search(text)) or is_abstention(text)
    total = time.perf_counter() - started
    return Prediction(text, abstained, set() if abstained else {h.page for h in hits}, first or total, total)


# -- mmlongbench ----------------------------------------------------------------------------------------------
def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answerable = [r for r in rows if r["format"] != "None"]
    unanswerable = [r for r in rows if r["format"] == "None"]
    cited = sum(len(r["pages"]) for r in rows)
    correct_cites = sum(len(set(r["pages"]) & set(r["gold_pages"])) for r in rows)
    gold = sum(len(r["gold_pages"]) for r in answerable)
    med = statistics.median
    return {
        "questions": len(rows),
        "accuracy": round(sum(r["score"] for r in rows) / max(1, len(rows)), 4),
        "accuracy_answerable": round(sum(r["score"] for r in answerable) / max(1, len(answerable)), 4),
        "citation_precision": round(correct_cites / cited, 4) if cited else None,
        "citation_recall": round(correct_cites / gold, 4) if gold else None,
        "abstention_recall": round(sum(r["abstained"] for r in unanswerable) / max(1, len(unanswerable)), 4),
        "false_abstention": round(sum(r["abstained"] for r in answerable) / max(1, len(answerable)), 4),
        "p50_first_token_s": round(med([r["first_token_s"] for r in rows]), 3) if rows else None,
        "p50_answer_s": round(med([r["answer_s"] for r in rows]), 3) if rows else None,
    }


def run_mmlongbench(path: Path, kb_dir: Path, model: str = "qwen", limit: int | None = None, baseline: bool = True,
                    options: dict[str, Any] | None = None, log: Callable[[str], None] = lambda s: None,
                    sdk: Any = None) -> dict[str, Any]:
    from assistant.sdk import Citeline
    from retrieval.types import SearchFilters

    questions = [json.loads(line) for line in (path / "questions.jsonl").read_text().splitlines() if line.strip()]
    questions = questions[:limit] if limit else questions
    sdk = sdk or Citeline(kb_dir)
    answerer = sdk.answerer(model=model, **(options or {}))
    search = answerer.search
    runs: dict[str, list[dict[str, Any]]] = {"citeline": [], "baseline": []}
    systems: dict[str, Callable[[dict[str, Any], Any], Prediction]] = {
        "citeline": lambda q, f: citeline_predict(answerer, q["question"], f)}
    if baseline:
        systems["baseline"] = lambda q, f: baseline_predict(search, answerer.generator, q["question"], f,
                                                            sampling=answerer.settings.sampling)
    # one system at a time over all questions, as a user's session runs: each keeps its own prompt prefix in
    # the model's KV cache between questions (interleaving the two would evict it every time)
    for name, predict in systems.items():
        for i, q in enumerate(questions, 1):
            p = predict(q, SearchFilters(docs=(q["doc_id"],)))
            row = {"qid": q["qid"], "format": q["answer_format"], "gold": q["answer"],
                   "pred": p.text, "abstained": p.abstained, "pages": sorted(p.pages),
                   "gold_pages": q.get("evidence_pages", []),
                   "score": score_answer(p.text, p.abstained, str(q["answer"]), q["answer_format"]),
                   "first_token_s": p.first_token_s, "answer_s": p.answer_s, "answerable": p.answerable,
                   "raw": p.raw, "checks": list(p.checks)}
            runs[name].append(row)
            log("ROW " + json.dumps({name: row}))
            log(f"  [{i}/{len(questions)}] {name} {q['qid']} score={row['score']:.0f}"
                f"{' (abstained)' if row['abstained'] else ''} first token {p.first_token_s:.2f} s")
    return {"dataset": f"mmlongbench:{path}", "model": model,
            "runs": {name: summarise(rows) for name, rows in runs.items() if rows},
            "rows": runs}


# -- scifact claims ---------------------------------------------------------------------------------------------
def run_scifact_claims(path: Path, model: str = "qwen", limit: int | None = 50, options: dict[str, Any] | None = None,
                       log: Callable[[str], None] = lambda s: None, embedder: Any = None) -> dict[str, Any]:
    """Each claim against the sentences of its cited abstracts: SUPPORT if a verified answer agrees, CONTRADICT
    if it negates, NEI on abstention; rationale precision = cited sentences that are gold rationales."""
    from assistant.answer import Answerer, AnswerSettings
    from assistant.generators import build_generator
    from retrieval.types import Hit

    root = path if path.is_dir() else path.parent
    claims = [json.loads(line) for line in (root / "claims_dev.jsonl").read_text().splitlines() if line.strip()]
    claims = claims[:limit] if limit else claims
    wanted = {d for c in claims for d in c["cited_doc_ids"]}
    sentences: dict[int, list[str]] = {}
    for line in (root / "corpus_sentences.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["doc_id"] in wanted:
            sentences[row["doc_id"]] = row["abstract"]
    generator = build_generator(model)
    correct, cited, cited_ok, rows = 0, 0, 0, []
    for claim in claims:
        hits = [Hit(id=doc * 1000 + i, doc_id=str(doc), doc_name=str(doc), page=i + 1, kind="text", text=s, score=1.0)
                for doc in claim["cited_doc_ids"] for i, s in enumerate(sentences.get(doc, []))]

        def search(query: str, k: int, filters: Any, /, *, image: str | None = None,
                   hits: list[Hit] = hits) -> list[Hit]:
            from assistant.prompting import terms

            q = terms(query)
            return sorted(hits, key=lambda h: -len(q & terms(h.text)))[:k]

        answerer = Answerer(search, generator, embedder=embedder,
                            settings=AnswerSettings().with_options(**(options or {})))
        a = answerer.ask(f"Is this claim true: {claim['claim']}")
        label = "NEI" if a.abstained else ("CONTRADICT" if re.search(r"\b(no|not|false|contradict)", a.text, re.I)
                                           else "SUPPORT")
        gold_labels = {e["label"] for ev in claim["evidence"].values() for e in ev} or {"NEI"}
        gold_sents = {(int(d), s) for d, ev in claim["evidence"].items() for e in ev for s in e["sentences"]}
        mine = {(int(c.doc), c.page - 1) for c in a.citations}
        correct += label in gold_labels
        cited += len(mine)
        cited_ok += len(mine & gold_sents)
        rows.append({"id": claim["id"], "label": label, "gold": sorted(gold_labels), "answer": a.text})
        log(f"  claim {claim['id']}: {label} (gold {'/'.join(sorted(gold_labels))})")
    return {"dataset": f"scifact-claims:{path}", "model": model,
            "runs": {"citeline": {"claims": len(claims), "label_accuracy": round(correct / max(1, len(claims)), 4),
                                  "rationale_precision": round(cited_ok / cited, 4) if cited else None}},
            "rows": rows}


# -- CLI --------------------------------------------------------------------------------------------------------
def register(eval_sub: Any) -> None:
    p = eval_sub.add_parser("qa", help="answer accuracy, citation precision/recall, abstention, latency vs a baseline")
    p.add_argument("--dataset", required=True, metavar="KIND:PATH", help="mmlongbench:DIR or scifact-claims:DIR")
    p.add_argument("--kb", metavar="DIR", default=None, help="an already-ingested KB of the dataset's documents")
    p.add_argument("--cache-dir", metavar="DIR", default=None, help="where the eval KB is built and cached")
    p.add_argument("--model", default="qwen", help="generator spec (default: the offline qwen GGUF)")
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="an answer setting (min_confidence=0.45, coverage=0.75, context_tokens=300, ...)")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--rows", metavar="FILE", help="write per-question rows as JSON to FILE")
    p.set_defaults(func=cmd_qa)


def _parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def cmd_qa(args: argparse.Namespace) -> int:
    kind, _, raw = args.dataset.partition(":")
    path = Path(raw).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such dataset folder")

    def log(s: str) -> None:
        print(s, file=sys.stderr, flush=True)

    options = _parse_options(args.option)
    try:  # a bad option is reported before the eval KB is built, not after
        from assistant.answer import AnswerSettings

        AnswerSettings().with_options(**options)
    except (TypeError, ValueError) as exc:
        print(f"citeline: error: --option: {exc}", file=sys.stderr)
        return 2
    if kind == "mmlongbench":
        kb_dir = Path(args.kb) if args.kb else _eval_kb(path, args.cache_dir, log)
        result = run_mmlongbench(path, kb_dir, args.model, args.limit, not args.no_baseline, options, log)
    elif kind == "scifact-claims":
        result = run_scifact_claims(path, args.model, args.limit or 50, options, log)
    else:
        print(f"citeline: error: unknown dataset kind {kind!r}; use mmlongbench:DIR or scifact-claims:DIR",
              file=sys.stderr)
        return 2
    rows = result.pop("rows")
    if args.rows:
        Path(args.rows).write_text(json.dumps(rows, indent=1))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, metrics in result["runs"].items():
            print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    return 0


def _eval_kb(path: Path, cache_dir: str | None, log: Callable[[str], None]) -> Path:
    from eval.cli import default_cache_dir
    from eval.retrieval import EvalConfig, build_kb

    config = EvalConfig("mmlongbench", path, Path(cache_dir) if cache_dir else default_cache_dir())
    kb = build_kb(config, log)
    root = Path(kb.location)
    kb.close()
    return root
