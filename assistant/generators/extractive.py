"""The extractive 'generator': no model, just the source sentences that best match the question, each cited.

It reads the question and the numbered sources back out of the prompt (built by `assistant.prompting`), so it
fits the same protocol as the models. What it says is copied from the sources, so it is always faithful.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from assistant.prompting import parse_prompt, split_sentences, terms
from assistant.types import ABSTAIN_TEXT, Message, Sampling


class ExtractiveGenerator:
    cites_reliably = True
    supports_images = False
    name = "extractive"

    def __init__(self, max_sentences: int = 2, min_overlap: float = 0.34, embedder: Any = None) -> None:
        self.max_sentences = max_sentences
        self.min_overlap = min_overlap  # share of the question's content words a sentence must contain
        self.embedder = embedder

    def rank(self, question: str, sources: Sequence[Any]) -> list[tuple[float, int, str]]:
        wanted = terms(question)
        rows = [(s.n, sent) for s in sources for sent in split_sentences(s.text) if len(sent) > 3]
        if not rows or not wanted:
            return []
        lexical = np.array([len(wanted & terms(t)) / len(wanted) for _, t in rows])
        score = lexical
        if self.embedder is not None:
            vecs = self.embedder.embed([question] + [t for _, t in rows])
            score = 0.5 * lexical + 0.5 * (vecs[1:] @ vecs[0])
        order = np.argsort(-score, kind="stable")
        return [(float(score[i]), rows[i][0], rows[i][1]) for i in order if lexical[i] >= self.min_overlap]

    def stream(self, messages: Sequence[Message], images: Sequence[str] = (),
               sampling: Sampling | None = None) -> Iterator[str]:
        question, sources = parse_prompt(messages)
        best = self.rank(question, sources)[: self.max_sentences]
        if not best:
            yield ABSTAIN_TEXT
            return
        for i, (_, n, sentence) in enumerate(best):
            body = sentence.rstrip()
            stop = body[-1] if body[-1:] in ".!?" else "."
            body = body[:-1] if body[-1:] in ".!?" else body
            yield ("" if i == 0 else " ") + f"{body} [{n}]{stop}"
