"""Citations: parse the `[n]` markers of an answer, check each claim against its source, keep only what the
sources support, and decide when to abstain.

Each sentence gets a three-way verdict from the entailment stage (`assistant.entailment`): supported by a span of
a cited source, unsupported, or contradicted, with a machine-readable reason. A contradicted sentence is never
shown; an unsupported one is dropped (default) or shown flagged (`mode="flag"`). Thresholds live in
`VerifySettings`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from assistant.entailment import EntailmentModel, build_entailment
from assistant.prompting import split_sentences
from assistant.prompting import terms as _terms
from assistant.types import ABSTAIN_TEXT, Citation, ClaimCheck, Source

_MARK = re.compile(r"\[\s*(?:sources?\s*)?(\d+(?:\s*(?:,|;|-|–|and)\s*\d+)*)\s*\]", re.I)
_MARKS_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\s*(?:sources?\s*)?\d[^\]]*\])+)", re.I)
# "I could not find it": always an abstention
_ABSTAIN = re.compile(
    r"could not find|couldn't find|cannot find|can't find|unable to (?:answer|find|determine)|not enough information"
    r"|\bno (?:information|mention|details?|data)\b|cannot (?:be )?(?:answer|determine)|i (?:do not|don't) know"
    r"|there is no (?:mention|information)", re.I)
# "X is not mentioned": an abstention unless a source supports it as a statement ("does not include water damage")
_MAYBE_ABSTAIN = re.compile(
    r"not (?:found|mentioned|provided|stated|specified|given|discussed|available|listed|described)"
    r"|do(?:es)? not (?:contain|mention|provide|say|specify|include|state|discuss|give|list|describe)", re.I)


@dataclass(frozen=True)
class VerifySettings:
    entailment: str = "checks"  # the backend: checks (offline default) | nli:HUB_ID_OR_PATH | judge
    coverage: float = 0.75  # checks: share of the claim's content words the supporting span must hold
    semantic: float = 0.7  # checks: a paraphrase needs this cosine to its span (with half the words)
    mode: Literal["drop", "flag"] = "drop"  # what happens to an unsupported (not contradicted) sentence
    infer_missing: bool = True  # an uncited sentence is attributed to its best supporting source, if any

    def __post_init__(self) -> None:
        for name in ("coverage", "semantic"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {getattr(self, name)}")
        if self.mode not in ("drop", "flag"):
            raise ValueError(f"mode must be 'drop' or 'flag', got {self.mode!r}")


@dataclass(frozen=True)
class Claim:
    text: str  # the sentence without its markers
    cited: tuple[int, ...]


@dataclass(frozen=True)
class Support:
    verdict: str  # supported | unsupported | contradicted
    score: float  # 0..1: the entailment score of the verdict
    quote: str  # the source span the verdict rests on
    reason: str

    @property
    def supported(self) -> bool:
        return self.verdict == "supported"


@dataclass
class Verification:
    text: str
    citations: list[Citation] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    abstained: bool = False
    invalid_refs: list[int] = field(default_factory=list)  # cited numbers with no such source
    checks: list[ClaimCheck] = field(default_factory=list)  # every claim's verdict, shown or not


def _expand(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*(?:,|;|and)\s*", group):
        if re.fullmatch(r"\d+\s*[-–]\s*\d+", part):
            a, b = (int(x) for x in re.split(r"[-–]", part))
            out += list(range(a, b + 1)) if 0 < b - a < 20 else [a, b]
        elif part.strip().isdigit():
            out.append(int(part))
    return out


def parse_claims(answer: str) -> list[Claim]:
    """Split an answer into sentences with the source numbers each cites (markers after a full stop belong
    to the sentence before it)."""
    text = re.sub(r"(?<![.!?:\n])\n(?![\n*•-]|\d+[.)])", " ", answer.strip())  # a wrapped line is not a sentence end
    text = _MARKS_AFTER_STOP.sub(lambda m: f"{m.group(2)}{m.group(1)}", text)
    claims = []
    for sentence in split_sentences(text):
        cited = tuple(dict.fromkeys(n for g in _MARK.findall(sentence) for n in _expand(g)))
        bare = re.sub(r"\s+([.,;:!?])", r"\1", _MARK.sub("", sentence)).strip()
        if bare.strip(" .,;:!?-*"):
            claims.append(Claim(bare, cited))
    return claims


def is_abstention(text: str) -> bool:
    """The model says it could not answer (a sentence such as "the sources do not mention X" is checked against
    the sources first: when one supports it, it is a negative answer, not an abstention)."""
    return bool(_ABSTAIN.search(text) or _MAYBE_ABSTAIN.search(text))


def _certain_abstention(text: str) -> bool:
    return bool(_ABSTAIN.search(text))


class Verifier:
    def __init__(self, settings: VerifySettings | None = None, embedder: Any = None,
                 entailment: EntailmentModel | None = None, generator: Any = None) -> None:
        self.settings = settings or VerifySettings()
        self.embedder = embedder  # any TextEmbedder (embed(texts) -> L2-normalised rows), or None
        self.entailment = entailment or _build(self.settings, embedder, generator)
        self._source_cache: dict[int, tuple[list[str], np.ndarray | None]] = {}

    # -- support of one sentence by one source -------------------------------------------------------------
    def support(self, sentence: str, source: Source, question: str = "") -> Support:
        """The verdict on `sentence` given `source` alone: the question is never evidence."""
        check = getattr(self.entailment, "check", None)
        if callable(check):  # the checks backend finds its own supporting span
            r = check(source.text, sentence, question)
            return Support(r.verdict, r.entailment_score, r.span or self._closest(sentence, source), r.reason)
        (e,) = self.entailment.score([(source.text, sentence)])
        score = {"supported": e.entail, "unsupported": e.neutral, "contradicted": e.contradict}[e.verdict]
        return Support(e.verdict, score, self._closest(sentence, source), e.reason)

    def _closest(self, sentence: str, source: Source) -> str:
        key = hash((source.n, source.text))  # not id(): a joined passage is a short-lived object
        if key not in self._source_cache:
            pieces = split_sentences(source.text) or [source.text]
            vecs = self.embedder.embed(pieces) if self.embedder is not None else None
            self._source_cache[key] = (pieces, vecs)
        pieces, vecs = self._source_cache[key]
        if vecs is None:
            words = _terms(sentence)
            return max(pieces, key=lambda p: len(words & _terms(p)))
        return pieces[int(np.argmax(vecs @ self.embedder.embed([sentence])[0]))]

    # -- a whole answer -------------------------------------------------------------------------------------
    def verify(self, answer: str, sources: Sequence[Source], question: str = "") -> Verification:
        self._source_cache.clear()
        by_n = {s.n: s for s in sources}
        result = Verification(text="")
        kept: list[str] = []
        for claim in parse_claims(answer):
            if _certain_abstention(claim.text):
                result.dropped.append(claim.text)
                continue
            result.invalid_refs += [n for n in claim.cited if n not in by_n]
            citations = self._cite(claim, by_n, question)
            verified = [c for c in citations if c.verified]
            if not verified and is_abstention(claim.text):  # "not mentioned", and no source says so
                result.dropped.append(claim.text)
                continue
            shown = bool(verified) or (self.settings.mode == "flag" and bool(citations)
                                       and not any(c.verdict == "contradicted" for c in citations))
            result.checks.append(_check(claim.text, verified or citations, shown))
            if verified:
                result.citations += verified
                kept.append(_render(claim.text, [c.n for c in verified]))
            elif shown:
                result.citations += citations
                result.dropped.append(claim.text)
                kept.append(_render(claim.text, [c.n for c in citations]) + " (unverified)")
            else:
                result.dropped.append(claim.text)
        result.text = " ".join(kept)
        result.abstained = not any(c.verified for c in result.citations)
        if result.abstained:
            result.text = ABSTAIN_TEXT
        return result

    def _cite(self, claim: Claim, by_n: dict[int, Source], question: str) -> list[Citation]:
        """Check the cited sources; when none supports the sentence (small models often cite the wrong number),
        attribute it to the single best supporting source instead, marked `inferred`. Without any support the
        citations say why: contradicted by a cited source (or, uncited, by any), else unsupported."""
        cited = [by_n[n] for n in claim.cited if n in by_n]
        checked = [(s, self.support(claim.text, s, question)) for s in cited]
        if any(sup.supported for _, sup in checked) or not self.settings.infer_missing:
            return [_citation(s, sup, claim.text, False) for s, sup in checked]
        others = [(s, self.support(claim.text, s, question)) for s in by_n.values() if s not in cited]
        best = sorted([p for p in others if p[1].supported], key=lambda p: p[1].score, reverse=True)[:1]
        if best:
            return [_citation(s, sup, claim.text, True) for s, sup in best]
        joined = self._across(claim, list(by_n.values()), question)
        if joined:
            return joined
        if not checked:  # uncited and unsupported: report the source that contradicts it, if one does
            checked = [p for p in others if p[1].verdict == "contradicted"][:1]
        return [_citation(s, sup, claim.text, False) for s, sup in checked]

    def _across(self, claim: Claim, sources: list[Source], question: str) -> list[Citation]:
        """A sentence the document states across a chunk or page boundary: two text sources of the same
        document on the same or consecutive pages are read as one passage, in page order; when that passage
        supports the claim and neither part does alone, both are cited."""
        texts = [s for s in sources if s.kind != "figure"]
        for a, b in ((a, b) for a in texts for b in texts if a.doc_id == b.doc_id and 0 <= b.page - a.page <= 1
                     and a.n != b.n and (a.page, a.n) < (b.page, b.n)):
            both = replace(a, text=f"{a.text.rstrip()} {b.text.lstrip()}")
            sup = self.support(claim.text, both, question)
            if sup.supported:
                return [_citation(s, sup, claim.text, s.n not in claim.cited) for s in (a, b)]
        return []


def _build(settings: VerifySettings, embedder: Any, generator: Any) -> EntailmentModel:
    if settings.entailment == "checks":
        from assistant.entailment.checks import CheckSettings

        return build_entailment("checks", embedder=embedder,
                                settings=CheckSettings(coverage=settings.coverage, semantic=settings.semantic))
    return build_entailment(settings.entailment, embedder=embedder, generator=generator)


def _check(sentence: str, citations: Sequence[Citation], shown: bool) -> ClaimCheck:
    if not citations:
        return ClaimCheck(sentence, "unsupported", "no source: the sentence matches none of the sources", None,
                          "", shown)
    c = next((c for c in citations if c.verdict == "contradicted"), citations[0])
    return ClaimCheck(sentence, c.verdict, c.reason, c.n, c.quote, shown)


def _render(text: str, numbers: Sequence[int]) -> str:
    marks = "".join(f"[{n}]" for n in dict.fromkeys(numbers))
    body, stop = (text[:-1], text[-1]) if text[-1:] in ".!?" else (text, ".")
    return f"{body} {marks}{stop}"


def _citation(source: Source, sup: Support, sentence: str, inferred: bool) -> Citation:
    return Citation(n=source.n, doc=source.doc, page=source.page, quote=sup.quote, verified=sup.supported,
                    support=sup.score, sentence=sentence, bbox=source.bbox, doc_id=source.doc_id,
                    chunk_id=source.chunk_id, figure_path=source.figure_path, inferred=inferred,
                    verdict=sup.verdict, reason=sup.reason, attached_to=source.attached_to)
