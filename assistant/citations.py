"""Citations: parse the `[n]` markers of an answer, check each cited sentence against its source, keep only
what the sources support, and decide when to abstain.

Support is lexical (the sentence's words and every number it states must be in the source) and, when a text
embedder is given, semantic (cosine to the closest source sentence). Thresholds live in `VerifySettings`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from assistant.prompting import split_sentences
from assistant.prompting import terms as _terms
from assistant.types import ABSTAIN_TEXT, Citation, Source

_MARK = re.compile(r"\[\s*(?:sources?\s*)?(\d+(?:\s*(?:,|;|-|–|and)\s*\d+)*)\s*\]", re.I)
_MARKS_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[\s*(?:sources?\s*)?\d[^\]]*\])+)", re.I)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_ABSTAIN = re.compile(
    r"could not find|couldn't find|cannot find|can't find|not (?:found|mentioned|provided|stated|specified|given)"
    r"|do(?:es)? not (?:contain|mention|provide|say|specify|include)|no (?:information|mention)|not enough information"
    r"|cannot (?:be )?(?:answer|determine)|unable to (?:answer|find|determine)", re.I)


@dataclass(frozen=True)
class VerifySettings:
    lexical_threshold: float = 0.6  # share of the sentence's content words found in the source
    embedding_threshold: float = 0.6  # cosine to the closest source sentence ...
    min_lexical: float = 0.3  # ... accepted only with at least this much word overlap
    require_numbers: bool = True  # every number stated must appear in the source (or the question)
    mode: Literal["drop", "flag"] = "drop"  # what happens to a sentence no source supports
    infer_missing: bool = True  # an uncited sentence is attributed to its best supporting source, if any

    def __post_init__(self) -> None:
        for name in ("lexical_threshold", "embedding_threshold", "min_lexical"):
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
    score: float
    lexical: float
    semantic: float
    numbers_ok: bool
    quote: str
    supported: bool


@dataclass
class Verification:
    text: str
    citations: list[Citation] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    abstained: bool = False
    invalid_refs: list[int] = field(default_factory=list)  # cited numbers with no such source


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
    return bool(_ABSTAIN.search(text))


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}


class Verifier:
    def __init__(self, settings: VerifySettings | None = None, embedder: Any = None) -> None:
        self.settings = settings or VerifySettings()
        self.embedder = embedder  # any TextEmbedder (embed(texts) -> L2-normalised rows), or None
        self._source_cache: dict[int, tuple[list[str], np.ndarray | None]] = {}

    # -- support of one sentence by one source -------------------------------------------------------------
    def support(self, sentence: str, source: Source, question: str = "") -> Support:
        sent_terms, src_terms = _terms(sentence), _terms(source.text)
        novel = sent_terms - _terms(question)
        cover_all = len(sent_terms & src_terms) / len(sent_terms) if sent_terms else 0.0
        cover_new = len(novel & src_terms) / len(novel) if novel else cover_all
        lexical = 0.7 * cover_new + 0.3 * cover_all
        numbers_ok = _numbers(sentence) <= (_numbers(source.text) | _numbers(question))
        pieces, semantic, best = self._closest(sentence, source)
        if semantic is None:  # no embedder: the quote is the sentence sharing most words
            best = max(range(len(pieces)), key=lambda i: len(sent_terms & _terms(pieces[i])))
            semantic = 0.0
        s = self.settings
        ok = numbers_ok or not s.require_numbers
        supported = ok and (lexical >= s.lexical_threshold or
                            (semantic >= s.embedding_threshold and lexical >= s.min_lexical))
        return Support(max(lexical, semantic), lexical, semantic, numbers_ok, pieces[best], supported)

    def _closest(self, sentence: str, source: Source) -> tuple[list[str], float | None, int]:
        key = id(source)
        if key not in self._source_cache:
            pieces = split_sentences(source.text) or [source.text]
            vecs = self.embedder.embed(pieces) if self.embedder is not None else None
            self._source_cache[key] = (pieces, vecs)
        pieces, vecs = self._source_cache[key]
        if vecs is None:
            return pieces, None, 0
        sims = vecs @ self.embedder.embed([sentence])[0]
        best = int(np.argmax(sims))
        return pieces, float(sims[best]), best

    # -- a whole answer -------------------------------------------------------------------------------------
    def verify(self, answer: str, sources: Sequence[Source], question: str = "") -> Verification:
        self._source_cache.clear()
        by_n = {s.n: s for s in sources}
        result = Verification(text="")
        kept: list[str] = []
        for claim in parse_claims(answer):
            if is_abstention(claim.text):
                result.dropped.append(claim.text)
                continue
            result.invalid_refs += [n for n in claim.cited if n not in by_n]
            citations = self._cite(claim, by_n, question)
            verified = [c for c in citations if c.verified]
            if verified:
                result.citations += verified
                kept.append(_render(claim.text, [c.n for c in verified]))
            elif self.settings.mode == "flag" and citations:
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
        attribute it to the single best supporting source instead, marked `inferred`."""
        cited = [by_n[n] for n in claim.cited if n in by_n]
        checked = [(s, self.support(claim.text, s, question)) for s in cited]
        if any(sup.supported for _, sup in checked) or not self.settings.infer_missing:
            return [_citation(s, sup, claim.text, False) for s, sup in checked]
        others = [(s, self.support(claim.text, s, question)) for s in by_n.values() if s not in cited]
        best = sorted(others, key=lambda p: p[1].score, reverse=True)[:1]
        best = [p for p in best if p[1].supported]
        if best:
            return [_citation(s, sup, claim.text, True) for s, sup in best]
        return [_citation(s, sup, claim.text, False) for s, sup in checked]


def _render(text: str, numbers: Sequence[int]) -> str:
    marks = "".join(f"[{n}]" for n in dict.fromkeys(numbers))
    body, stop = (text[:-1], text[-1]) if text[-1:] in ".!?" else (text, ".")
    return f"{body} {marks}{stop}"


def _citation(source: Source, sup: Support, sentence: str, inferred: bool) -> Citation:
    return Citation(n=source.n, doc=source.doc, page=source.page, quote=sup.quote, verified=sup.supported,
                    support=sup.score, sentence=sentence, bbox=source.bbox, doc_id=source.doc_id,
                    chunk_id=source.chunk_id, figure_path=source.figure_path, inferred=inferred)
