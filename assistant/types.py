"""What the assistant hands back: an answer, its verified citations, the sources it was shown, stream events.

Sources are numbered as the model saw them (`[1]`, `[2]`, ...); a citation's `n` refers to that number, and
carries everything a UI needs to highlight it (document, page, bbox, chunk id, figure crop, quote).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ingest.types import BoxTuple
from retrieval.types import ParentLink

ABSTAIN_TEXT = "I could not find this in your documents."

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": ...}


@dataclass(frozen=True)
class Sampling:
    """Decoding settings passed to every generator (each uses what its backend supports)."""

    temperature: float = 0.0
    top_p: float = 0.95
    top_k: int = 40
    max_tokens: int = 160
    seed: int | None = 0
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0 or self.max_tokens < 1:
            raise ValueError(f"invalid sampling settings: {self}")


@dataclass(frozen=True)
class Source:
    """One numbered passage, table or figure description that the model was shown."""

    n: int
    doc: str
    doc_id: str
    page: int
    kind: str
    text: str  # the (possibly truncated) text as shown to the model
    score: float = 0.0
    bbox: BoxTuple | None = None
    chunk_id: str | None = None
    hit_id: int | None = None
    figure_path: str | None = None
    attached_to: ParentLink | None = None  # the message its document is attached to

    @property
    def label(self) -> str:
        return f"{self.doc} p.{self.page}"

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n, "doc": self.doc, "doc_id": self.doc_id, "page": self.page, "kind": self.kind,
            "bbox": list(self.bbox) if self.bbox else None, "chunk_id": self.chunk_id, "id": self.hit_id,
            "figure_path": self.figure_path, "score": round(float(self.score), 6), "text": self.text,
            "attached_to": self.attached_to.to_json() if self.attached_to else None,
        }


@dataclass(frozen=True)
class Citation:
    """A `[n]` in the answer, resolved to its source and checked against it."""

    n: int
    doc: str
    page: int
    quote: str  # the source sentence that best supports the cited sentence
    verified: bool
    support: float  # the support score the verifier computed, 0..1
    sentence: str  # the answer sentence that carries the citation
    bbox: BoxTuple | None = None
    doc_id: str = ""
    chunk_id: str | None = None
    figure_path: str | None = None
    inferred: bool = False  # True when the model did not cite and the verifier attached the best source
    verdict: str = "supported"  # supported | unsupported | contradicted (assistant.entailment.Verdict)
    reason: str = ""  # the verifier's short, machine-readable reason
    attached_to: ParentLink | None = None  # the message the cited document is attached to

    @property
    def label(self) -> str:
        return f"{self.doc} p.{self.page}"

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n, "doc": self.doc, "doc_id": self.doc_id, "page": self.page,
            "bbox": list(self.bbox) if self.bbox else None, "chunk_id": self.chunk_id,
            "figure_path": self.figure_path, "quote": self.quote, "verified": self.verified,
            "support": round(float(self.support), 4), "sentence": self.sentence, "inferred": self.inferred,
            "verdict": self.verdict, "reason": self.reason,
            "attached_to": self.attached_to.to_json() if self.attached_to else None,
        }


@dataclass(frozen=True)
class ClaimCheck:
    """The verifier's verdict on one sentence of the model's reply, kept or not."""

    sentence: str
    verdict: str  # supported | unsupported | contradicted
    reason: str
    n: int | None = None  # the source it was checked against (None when no source was close)
    quote: str = ""  # the source span the verdict rests on
    shown: bool = False  # whether the sentence is in the answer text

    def to_json(self) -> dict[str, Any]:
        return {"sentence": self.sentence, "verdict": self.verdict, "reason": self.reason, "n": self.n,
                "quote": self.quote, "shown": self.shown}


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    sources: tuple[Source, ...] = ()
    abstained: bool = False
    query: str = ""  # the standalone query that was searched (after rewriting a follow-up)
    raw_text: str = ""  # what the generator produced, before verification
    dropped: tuple[str, ...] = ()  # sentences removed (or flagged) because no source supports them
    checks: tuple[ClaimCheck, ...] = ()  # every checked sentence with its verdict and reason
    confidence: float = 0.0  # retrieval confidence, 0..1
    answerable: float | None = None  # the model's log-odds that the sources answer the question (when it judges)
    model: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # first_token_s, answer_s, search_s
    cancelled: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question, "query": self.query, "answer": self.text, "abstained": self.abstained,
            "citations": [c.to_json() for c in self.citations], "sources": [s.to_json() for s in self.sources],
            "dropped": list(self.dropped), "claims": [c.to_json() for c in self.checks],
            "confidence": round(float(self.confidence), 4),
            "answerable": None if self.answerable is None else round(self.answerable, 4), "model": self.model,
            "timings": {k: round(v, 4) for k, v in self.timings.items()}, "cancelled": self.cancelled,
        }


@dataclass(frozen=True)
class PageImage:
    """What a UI needs to show a cited page: its stored thumbnail (None when the KB has none), the page's size
    in the coordinates bboxes use (PDF points; pixels for images), and the source file while it still exists."""

    doc_id: str
    page: int
    width: float
    height: float
    thumbnail: Path | None = None
    source: Path | None = None


EventType = Literal["sources", "token", "answer"]


@dataclass(frozen=True)
class StreamEvent:
    """What `ask(..., stream=True)` emits: the sources first, then raw tokens, then the verified answer.

    Tokens are the model's unverified draft; the final `answer` event carries the text after verification.
    """

    type: EventType
    text: str = ""
    sources: tuple[Source, ...] = ()
    answer: Answer | None = None

    def to_json(self) -> dict[str, Any]:
        if self.type == "token":
            return {"type": "token", "text": self.text}
        if self.type == "sources":
            return {"type": "sources", "sources": [s.to_json() for s in self.sources]}
        return {"type": "answer", "answer": self.answer.to_json() if self.answer else None}
