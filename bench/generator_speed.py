"""How fast a generator reads a prompt and starts answering on this machine: prompt tokens per second and the
first-token latency of a cited-answer prompt at the generator's default source budget (median of --runs).

    .venv/bin/python bench/generator_speed.py [--model qwen] [--runs 5]

First-token latency on 2 cores is almost all prompt reading, so it scales with the source budget and with this
machine's speed; the figure to compare across machines is prompt tokens per second (MODELS.md measured ~190 for
the offline 0.5B on an idle machine). Each run changes the first source so the KV cache cannot reuse it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.generators import budget_of, build_generator  # noqa: E402
from assistant.prompting import SYSTEM_PROMPT, build_messages, pack_sources  # noqa: E402
from assistant.types import Sampling  # noqa: E402
from retrieval.types import Hit  # noqa: E402

PASSAGE = ("The Aurora X2 battery lasts 14 hours of continuous playback at half volume, and a 10-minute charge adds "
           "about 2 hours. Charging from empty takes 90 minutes with the supplied USB-C adapter; a slower adapter "
           "may take up to three hours. The warranty covers manufacturing defects for two years but not water "
           "damage, and the earbuds are rated IP54 against dust and splashes. ")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="qwen")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    gen = build_generator(args.model)
    budget = budget_of(gen)
    first, rates, sizes = [], [], []
    for i in range(args.runs + 1):  # the first run loads the model and is not counted
        hits = [Hit(id=j, score=1.0 - j / 10, text=f"Note {i}-{j}. " + PASSAGE * 3, doc_id="d", doc_name="manual.pdf",
                    page=j + 1, kind="text") for j in range(budget.max_sources)]
        sources = pack_sources(hits, "How long does the battery last?", budget.context_tokens, budget.source_tokens,
                               budget.max_sources)
        messages = build_messages("How long does the battery last?", sources, [], SYSTEM_PROMPT, 2)
        started = time.perf_counter()
        stream = gen.stream(messages, [], Sampling(max_tokens=1))
        next(iter(stream), None)
        elapsed = time.perf_counter() - started
        for _ in stream:
            pass
        tokens = gen.count_tokens("".join(m["content"] for m in messages)) if hasattr(gen, "count_tokens") else 0
        if i:
            first.append(elapsed)
            sizes.append(tokens)
            rates.append(tokens / elapsed if tokens else 0.0)
    print(f"model {gen.name}: budget {budget.context_tokens} tokens in {budget.max_sources} sources of "
          f"<= {budget.source_tokens}")
    print(f"prompt tokens (median) {statistics.median(sizes):.0f}")
    print(f"first token p50 {statistics.median(first):.2f} s (min {min(first):.2f}, max {max(first):.2f}) "
          f"over {len(first)} runs")
    print(f"prompt speed p50 {statistics.median(rates):.0f} tokens/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
