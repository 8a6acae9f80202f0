"""`citeline ask | chat`: answers with verified citations, and an interactive chat."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from assistant.cli import add_kb_argument
from assistant.errors import EndpointError
from assistant.sdk import Citeline
from assistant.types import Answer
from retrieval.types import SearchFilters


def register(sub: Any) -> None:
    p = sub.add_parser("ask", help="answer a question from a knowledge base, with verified citations")
    p.add_argument("question")
    _answer_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--stream", action="store_true", help="show the model's draft on stderr as it is generated")
    p.add_argument("--image", metavar="FILE", default=None,
                   help="a picture the question is about: searched with it, and shown to a vision-capable model")
    p.add_argument("--chart", metavar="OUT", default=None,
                   help="answer with a cited chart of numbers read from the documents' tables, written to OUT "
                        "(.png, .svg, or .json for the Vega-Lite spec and every point's citation)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="interactive multi-turn chat over a knowledge base (streaming)")
    _answer_arguments(p)
    p.set_defaults(func=cmd_chat)


def _answer_arguments(p: argparse.ArgumentParser) -> None:
    add_kb_argument(p)
    p.add_argument("--model", default=None, help="qwen (offline default), smollm2, gguf:PATH, vlm:HUB_ID_OR_PATH, "
                   "openai:MODEL@BASE_URL (key from OPENAI_API_KEY / CITELINE_API_KEY), extractive")
    p.add_argument("--doc", action="append", default=[], metavar="NAME", help="only search these documents")
    p.add_argument("--top-k", type=int, default=None, help="passages retrieved (default 8)")
    p.add_argument("--context-tokens", type=int, default=None, help="prompt budget for the sources")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--sample-top-k", type=int, default=None, help="sampling top-k")
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--system-prompt", default=None, help="the system prompt, or @FILE to read it from a file")
    p.add_argument("--threshold", type=float, default=None,
                   help="share of a claim's words its supporting source span must hold (0..1)")
    p.add_argument("--min-confidence", type=float, default=None, help="retrieval confidence below which to abstain")
    p.add_argument("--min-answerable", type=float, default=None, metavar="LOGODDS",
                   help="first ask the model whether the sources answer the question (GGUF models) and abstain "
                        "below this log-odds of Yes over No; the model then answers without its own abstain rule")
    p.add_argument("--flag-unsupported", action="store_true", help="keep unsupported sentences, flagged")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    prompt = args.system_prompt
    if prompt and prompt.startswith("@"):
        prompt = Path(prompt[1:]).read_text(encoding="utf-8")
    return {"top_k": args.top_k, "context_tokens": args.context_tokens, "temperature": args.temperature,
            "top_p": args.top_p, "max_tokens": args.max_tokens, "seed": args.seed, "system_prompt": prompt,
            "coverage": args.threshold, "min_confidence": args.min_confidence,
            "min_answerable": args.min_answerable,
            "mode": "flag" if args.flag_unsupported else None,
            "sample_top_k": args.sample_top_k}




def _filters(args: argparse.Namespace) -> SearchFilters | None:
    return SearchFilters(docs=tuple(args.doc)) if args.doc else None


def answer_json(answer: Answer) -> dict[str, Any]:
    """The `--json` shape: answer, abstained, numbered citations, sources (plus timings and the query)."""
    return {
        "answer": answer.text, "abstained": answer.abstained,
        "citations": [{"n": c.n, "doc": c.doc, "page": c.page, "bbox": list(c.bbox) if c.bbox else None,
                       "quote": c.quote, "verified": c.verified, "chunk_id": c.chunk_id,
                       "figure_path": c.figure_path,
                       **({"attached_to": c.attached_to.to_json()} if c.attached_to else {})}
                      for c in answer.citations],
        "sources": [s.to_json() for s in answer.sources],
        "query": answer.query, "confidence": round(answer.confidence, 4),
        "answerable": None if answer.answerable is None else round(answer.answerable, 4), "model": answer.model,
        "timings": {k: round(v, 3) for k, v in answer.timings.items()},
    }


def print_answer(answer: Answer, out: TextIO) -> None:
    print(answer.text, file=out)
    seen: set[int] = set()
    lines = []
    for c in answer.citations:
        if c.n not in seen:
            seen.add(c.n)
            quote = c.quote if len(c.quote) <= 160 else c.quote[:157] + "..."
            lines.append(f"[{c.n}] {c.doc} p.{c.page}" + ("" if c.verified else " (unverified)") + f' "{quote}"')
    if answer.abstained and answer.sources:
        lines = ["closest sources:"] + [f"  {s.doc} p.{s.page}" for s in answer.sources]
    if lines:
        print("\n" + "\n".join(lines), file=out)


def cmd_chart(args: argparse.Namespace) -> int:
    """`ask --chart OUT`: the chart stage only (numbers come from table cells, not from the model)."""
    out = Path(args.chart)
    if out.suffix.lower() not in (".png", ".svg", ".json"):
        print(f"citeline: error: --chart {out}: write a chart as .png, .svg or .json", file=sys.stderr)
        return 2
    with Citeline(args.kb) as kb:
        chart = kb.chart(args.question, filters=_filters(args))
    if not chart.refused or out.suffix.lower() == ".json":
        chart.save(out)
    if args.json:
        print(json.dumps(chart.to_json(), indent=2))
    else:
        print(chart.text)
        for t in chart.sources or chart.closest:
            box = f" table at [{', '.join(f'{v:.0f}' for v in t.bbox)}]" if t.bbox else ""
            print(f"  {'source' if chart.sources else 'closest'}: {t.doc} p.{t.page}{box}")
        if not chart.refused or out.suffix.lower() == ".json":
            print(f"wrote {out}", file=sys.stderr)
    return 1 if chart.refused else 0


def cmd_ask(args: argparse.Namespace) -> int:
    if getattr(args, "chart", None):
        return cmd_chart(args)
    sdk = Citeline(args.kb)
    ask = {"model": args.model, "filters": _filters(args), "image": args.image, **_options(args)}
    if args.stream:
        stream = sdk.ask(args.question, stream=True, **ask)
        for piece in stream:
            sys.stderr.write(piece)
            sys.stderr.flush()
        sys.stderr.write("\n")
        answer = stream.result()
    else:
        answer = sdk.ask(args.question, **ask)
    if args.json:
        print(json.dumps(answer_json(answer), indent=2))
    else:
        print_answer(answer, sys.stdout)
    return 1 if answer.abstained else 0


def cmd_chat(args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    session = Citeline(args.kb).chat(model=args.model, filters=_filters(args), **_options(args))
    stdin = stdin or sys.stdin
    interactive = stdin.isatty()
    if interactive:
        print("citeline chat: ask a question; /reset forgets the conversation, /quit (or Ctrl-D) ends.",
              file=sys.stderr)
    while True:
        if interactive:
            sys.stderr.write("\n> ")
            sys.stderr.flush()
        line = stdin.readline()
        if not line:
            return 0
        question = line.strip()
        if not question:
            continue
        if question in ("/quit", "/exit"):
            return 0
        if question == "/reset":
            session.reset()
            continue
        try:
            _chat_turn(session, question)
        except EndpointError as exc:  # the endpoint failed this turn; the conversation goes on
            print(f"\nciteline: error: {exc} (ask again, or /quit)", file=sys.stderr)


def _chat_turn(session: Any, question: str) -> None:
    stream = session.stream(question)
    try:
        for piece in stream:
            sys.stderr.write(piece)
            sys.stderr.flush()
    except KeyboardInterrupt:
        stream.cancel()
    sys.stderr.write("\n")
    print_answer(stream.result(), sys.stdout)
    sys.stdout.flush()
