"""Entailment: does a source span support, leave open, or contradict a claim? See `base` for the seam."""

from __future__ import annotations

from typing import Any

from assistant.entailment.base import VERDICTS, Entailment, EntailmentModel, Verdict
from assistant.errors import UnknownEntailment

ENTAILMENT_SPECS = ("checks", "nli:HUB_ID_OR_PATH", "judge")


def build_entailment(spec: str = "checks", *, embedder: Any = None, generator: Any = None,
                     **options: Any) -> EntailmentModel:
    """`checks` (offline default, deterministic; `embedder` adds synonyms), `nli:ID` (a cross-encoder by hub id
    or local path), `judge` (the `generator` answering yes/no)."""
    if spec == "checks":
        from assistant.entailment.checks import ClaimChecks

        return ClaimChecks(embedder=embedder, **options)
    if spec.startswith("nli:") and len(spec) > 4:
        from assistant.entailment.nli import NLICrossEncoder

        return NLICrossEncoder(spec[4:], **options)
    if spec == "judge":
        from assistant.entailment.judge import GeneratorJudge

        if generator is None:
            raise UnknownEntailment("judge (needs a generator)", ENTAILMENT_SPECS)
        return GeneratorJudge(generator)
    raise UnknownEntailment(spec, ENTAILMENT_SPECS)


__all__ = ["ENTAILMENT_SPECS", "VERDICTS", "Entailment", "EntailmentModel", "UnknownEntailment", "Verdict",
           "build_entailment"]
