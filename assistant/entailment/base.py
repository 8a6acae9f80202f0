"""The entailment seam: does a premise (a source span) support, leave open, or contradict a hypothesis (a claim)?

One tiny protocol, several backends (`assistant.entailment.build_entailment`):

    checks            deterministic claim checks (numbers, units, negation, direction, quantifiers, entity roles)
    nli:HUB_ID|PATH   an NLI cross-encoder loaded through sentence-transformers `CrossEncoder`
    judge             the generator itself, from its yes/no log-odds (GGUF logits, OpenAI `top_logprobs`)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

Verdict = Literal["supported", "unsupported", "contradicted"]
VERDICTS: tuple[Verdict, ...] = ("supported", "unsupported", "contradicted")


@dataclass(frozen=True)
class Entailment:
    """Scores for one (premise, hypothesis) pair, each 0..1 (they need not sum to 1), and why."""

    entail: float
    neutral: float
    contradict: float
    reason: str = ""  # short and machine-readable, e.g. "number: 14 is stated for 'battery lasts', not 'recharge'"

    @property
    def verdict(self) -> Verdict:
        if self.contradict >= max(self.entail, self.neutral):
            return "contradicted"
        return "supported" if self.entail > self.neutral else "unsupported"


@runtime_checkable
class EntailmentModel(Protocol):
    name: str

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[Entailment]:
        """One Entailment per (premise, hypothesis) pair, in order."""
        ...
