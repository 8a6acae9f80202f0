"""The answering pipeline: rewrite → search → judge retrieval → pack sources → generate (streamed) → verify.

Abstention comes first and last: when retrieval finds nothing close to the question the model is not even
asked, and when no sentence of its reply survives verification the answer is "I could not find this in your
documents" with the closest sources. Cancelling (an Event, or closing the stream) stops the generator.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Generator as EventGenerator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from assistant.citations import Verifier, VerifySettings, is_abstention, parse_claims
from assistant.errors import CannotJudge
from assistant.generators import Generator, budget_of
from assistant.prompting import (
    PLAIN_PROMPT,
    SYSTEM_PROMPT,
    build_messages,
    judge_messages,
    pack_sources,
    source_from_hit,
    terms,
    without_abstain_rule,
)
from assistant.types import ABSTAIN_TEXT, Answer, Message, Sampling, Source, StreamEvent
from retrieval.rewrite import FollowUpRewriter, QueryRewriter, Turn
from retrieval.types import Hit, SearchFilters


class SearchFn(Protocol):
    """How the answerer searches: the (rewritten) question, how many hits, filters, and a query image the
    question is about (passed only when there is one)."""

    def __call__(self, query: str, top_k: int, filters: SearchFilters | None, /, *,
                 image: str | None = None) -> Sequence[Hit]: ...


@dataclass(frozen=True)
class AnswerSettings:
    top_k: int = 8  # hits retrieved
    # the source budget: None takes the generator's declared profile (assistant.generators.budget_of): the
    # offline 0.5B gets 300 tokens in 4 sources of 120, OpenAI-compatible endpoints 6000 tokens in 10 of 800
    context_tokens: int | None = None
    source_tokens: int | None = None  # at most this much of one hit
    max_sources: int | None = None
    # below this retrieval confidence, abstain without asking the model. On MMLongBench-dev 0.25 turned away 13 of 91
    # answerable questions and 1 of 24 unanswerable ones; 0.15 turns away 4 answerable, and 34 of 56 off-topic
    # questions asked of its documents ("What is the capital of France?")
    min_confidence: float = 0.15
    # a generator that can judge (assistant.generators.Judge) is first asked whether the sources answer the
    # question; below this log-odds of "Yes" over "No" the answer is an abstention. None: never ask.
    min_answerable: float | None = None
    closest_sources: int = 3  # shown with an abstention
    # when the model finds no answer in the best sources (or nothing it says survives verification), it gets
    # the next retrieved hits once more before the answer is an abstention. Off by default: with the offline
    # 0.5B on MMLongBench-dev (24 questions) it answered none more and lost one right abstention (CHANGELOG)
    second_look: bool = False
    # when the model says it could not find the answer, it is asked once more over the same sources without the
    # "say you could not find it" rule, and the claim checks decide. Off by default: with the offline 0.5B on all
    # 115 MMLongBench-dev questions it answered 1 more of 91 answerable questions right and 5 of 24 unanswerable
    # ones wrongly (abstention recall 0.79 -> 0.58; CHANGELOG)
    insist: bool = False
    images: int = 2  # figure crops sent to a vision-capable generator
    history_turns: int = 2
    system_prompt: str = SYSTEM_PROMPT
    sampling: Sampling = field(default_factory=Sampling)
    verify: VerifySettings = field(default_factory=VerifySettings)

    def __post_init__(self) -> None:
        # a switch given as text ("insist=maybe" from a command line or a JSON body) must not read as on
        for name in ("second_look", "insist"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be true or false, got {getattr(self, name)!r}")

    def with_options(self, **options: Any) -> AnswerSettings:
        """A copy with the given fields replaced; sampling and verify fields may be passed flat (`top_k` is the
        retrieval depth; the sampling top-k is `sample_top_k`)."""
        own = AnswerSettings.__dataclass_fields__
        sampling = {k: options.pop(k) for k in list(options) if k in Sampling.__dataclass_fields__ and k not in own}
        if "sample_top_k" in options:
            sampling["top_k"] = options.pop("sample_top_k")
        verify = {k: options.pop(k) for k in list(options) if k in VerifySettings.__dataclass_fields__}
        unknown = [k for k, v in options.items() if k not in AnswerSettings.__dataclass_fields__ and v is not None]
        if unknown:
            raise TypeError(f"unknown answer option(s): {', '.join(unknown)}")
        return replace(self, **{k: v for k, v in options.items() if v is not None},
                       sampling=replace(self.sampling, **{k: v for k, v in sampling.items() if v is not None}),
                       verify=replace(self.verify, **{k: v for k, v in verify.items() if v is not None}))


def retrieval_confidence(query: str, hits: Sequence[Hit], embedder: Any = None, top: int = 3) -> float:
    """How likely the top hits hold the answer: the share of the query's content words they contain, blended
    with the best query–passage cosine when an embedder is given."""
    if not hits:
        return 0.0
    wanted = terms(query)
    found = set().union(*(terms(h.text) for h in hits[:top]))
    lexical = len(wanted & found) / len(wanted) if wanted else 0.0
    if embedder is None:
        return lexical
    vecs = embedder.embed([query] + [h.text[:2000] for h in hits[:top]])
    dense = float(np.max(vecs[1:] @ vecs[0]))
    return 0.5 * lexical + 0.5 * max(0.0, dense)


class Answerer:
    """One answering pipeline over a search function and a generator, built once and asked many times: each
    call may bring its own `settings` (AnswerSettings) and query `image`; verifiers are built once per
    VerifySettings."""

    def __init__(self, search: SearchFn, generator: Generator, *, embedder: Any = None,
                 settings: AnswerSettings | None = None, rewriter: QueryRewriter | None = None,
                 assets_dir: str | Path | None = None, query_image: str | None = None) -> None:
        self.search = search
        self.query_image = query_image  # the user's own picture, shown to a vision-capable generator first
        self.generator = generator
        self.embedder = embedder
        self.settings = self._checked(settings or AnswerSettings())
        self.rewriter = rewriter or FollowUpRewriter()
        self.assets_dir = Path(assets_dir) if assets_dir else None
        self._verifiers: dict[VerifySettings, Verifier] = {}  # built on first use (judge needs the generator)

    def configured(self, settings: AnswerSettings | None = None, query_image: str | None = None) -> Answerer:
        """This answerer with other default settings or query image, sharing its search, generator and
        verifiers."""
        view = copy.copy(self)
        view.settings = self._checked(settings or self.settings)
        view.query_image = query_image if query_image is not None else self.query_image
        return view

    def _checked(self, settings: AnswerSettings | None) -> AnswerSettings:
        s = settings or self.settings
        if s.min_answerable is not None and not callable(getattr(self.generator, "yes_no", None)):
            raise CannotJudge(self.generator.name)
        return s

    def ask(self, question: str, history: Sequence[Turn] = (), filters: SearchFilters | None = None,
            cancel: threading.Event | None = None, *, image: str | None = None,
            settings: AnswerSettings | None = None) -> Answer:
        answer = None
        for event in self.events(question, history, filters, cancel, image=image, settings=settings):
            answer = event.answer or answer
        assert answer is not None
        return answer

    def stream(self, question: str, history: Sequence[Turn] = (), filters: SearchFilters | None = None, *,
               image: str | None = None, settings: AnswerSettings | None = None) -> AnswerStream:
        cancel = threading.Event()
        s = self._checked(settings)  # a generator that cannot judge fails here, not at the first token
        return AnswerStream(self.events(question, history, filters, cancel, image=image, settings=s), cancel)

    def events(self, question: str, history: Sequence[Turn] = (), filters: SearchFilters | None = None,
               cancel: threading.Event | None = None, *, image: str | None = None,
               settings: AnswerSettings | None = None) -> Iterator[StreamEvent]:
        """The pipeline's events for one question; `settings` and `image` default to the answerer's own."""
        s, started = self._checked(settings), time.perf_counter()
        image = image if image is not None else self.query_image
        query = self.rewriter.rewrite(question, history) if history else question
        found = self.search(query, s.top_k, filters, image=image) if image is not None else \
            self.search(query, s.top_k, filters)
        hits = list(found)
        confidence = retrieval_confidence(query, hits, self.embedder)
        timings = {"search_s": time.perf_counter() - started}
        base = Answer(question=question, text=ABSTAIN_TEXT, query=query, abstained=True, confidence=confidence,
                      model=self.generator.name, timings=timings)
        if confidence < s.min_confidence:
            yield StreamEvent("answer", answer=self._abstain(base, hits, started, s))
            return
        budget = budget_of(self.generator)
        sources = pack_sources(hits, query, s.context_tokens or budget.context_tokens,
                               s.source_tokens or budget.source_tokens, s.max_sources or budget.max_sources)
        yield StreamEvent("sources", sources=tuple(sources))
        system = s.system_prompt
        if system == SYSTEM_PROMPT and not getattr(self.generator, "cites_reliably", True):
            system = PLAIN_PROMPT
        if s.min_answerable is not None:  # the judge decides abstention; the model is asked only to answer
            system = without_abstain_rule(system)
        messages = build_messages(question, sources, _history_messages(history), system, s.history_turns)
        if s.min_answerable is not None:  # _checked made sure that the generator can judge
            answerable = float(self.generator.yes_no(judge_messages(messages)))  # type: ignore[attr-defined]
            base = replace(base, answerable=answerable)
            timings["judge_s"] = time.perf_counter() - started
            if answerable < s.min_answerable:
                yield StreamEvent("answer", answer=self._abstain(replace(base, sources=tuple(sources)), hits,
                                                                 started, s))
                return
        answer = yield from self._attempt(base, messages, sources, hits, image, s, cancel, started)
        plain = without_abstain_rule(system)
        if (answer.abstained and not answer.cancelled and s.insist and plain != system
                and is_abstention(answer.raw_text)):
            yield StreamEvent("sources", sources=tuple(sources))  # a fresh draft over the same sources
            messages = build_messages(question, sources, _history_messages(history), plain, s.history_turns)
            timings["insist_s"] = time.perf_counter() - started
            retry = yield from self._attempt(replace(base, timings=timings), messages, sources, hits, image, s,
                                             cancel, started)
            answer = retry if not retry.abstained else replace(answer, timings=retry.timings)
        rest = [h for h in hits if h.id not in {src.hit_id for src in sources}]
        if (answer.abstained and not answer.cancelled and s.second_look and rest
                and retrieval_confidence(query, rest, self.embedder) >= s.min_confidence):
            # a second look: the model said it could not find it, or nothing it said survived the checks, in
            # the best sources; the next hits get one more try before the answer is an abstention
            again = pack_sources(rest, query, s.context_tokens or budget.context_tokens,
                                 s.source_tokens or budget.source_tokens, s.max_sources or budget.max_sources)
            if again:
                yield StreamEvent("sources", sources=tuple(again))
                messages = build_messages(question, again, _history_messages(history), system, s.history_turns)
                timings["second_look_s"] = time.perf_counter() - started
                retry = yield from self._attempt(replace(base, timings=timings), messages, again, hits, image, s,
                                                 cancel, started)
                answer = retry if not retry.abstained else replace(answer, timings=retry.timings)
        yield StreamEvent("answer", answer=answer)

    def _attempt(self, base: Answer, messages: list[Message], sources: list[Source], hits: list[Hit],
                 image: str | None, s: AnswerSettings, cancel: threading.Event | None,
                 started: float) -> EventGenerator[StreamEvent, None, Answer]:
        """One draft from the generator over `sources`, streamed as token events, then verified."""
        raw, cancelled = [], False
        pieces = self.generator.stream(messages, self._images(sources, image, s), s.sampling)
        try:
            for piece in pieces:
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
                base.timings.setdefault("first_token_s", time.perf_counter() - started)
                raw.append(piece)
                yield StreamEvent("token", text=piece)
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()
        return self._verified(replace(base, raw_text="".join(raw), cancelled=cancelled), sources, hits, started, s)

    def _verified(self, base: Answer, sources: list[Source], hits: list[Hit], started: float,
                  s: AnswerSettings) -> Answer:
        verifier = self._verifiers.get(s.verify)
        if verifier is None:
            verifier = self._verifiers[s.verify] = Verifier(s.verify, self.embedder, generator=self.generator)
        result = verifier.verify(base.raw_text, sources, base.query)
        if result.abstained and not is_abstention(base.raw_text):
            quoted = _quote_cited(base.raw_text, sources, base.query, self.embedder)
            if quoted:  # the model pointed at a source but said nothing checkable: quote that source instead
                result = verifier.verify(quoted, sources, base.query)
        if result.abstained or (is_abstention(base.raw_text) and not result.citations):
            return self._abstain(replace(base, dropped=tuple(result.dropped), sources=tuple(sources),
                                         checks=tuple(result.checks)), hits, started, s)
        base.timings["answer_s"] = time.perf_counter() - started
        return replace(base, text=result.text, citations=tuple(result.citations), sources=tuple(sources),
                       abstained=False, dropped=tuple(result.dropped), checks=tuple(result.checks))

    def _abstain(self, base: Answer, hits: list[Hit], started: float, s: AnswerSettings) -> Answer:
        closest = base.sources or tuple(source_from_hit(i + 1, h) for i, h in
                                        enumerate(hits[: s.closest_sources]))
        base.timings["answer_s"] = time.perf_counter() - started
        return replace(base, text=ABSTAIN_TEXT, abstained=True, citations=(), sources=closest)

    def _images(self, sources: Sequence[Source], image: str | None, s: AnswerSettings) -> list[str]:
        """What a vision-capable generator sees: the user's query image first, then the cited figures' crops."""
        if not self.generator.supports_images:
            return []
        mine = [image] if image and Path(image).is_file() else []
        if self.assets_dir is None:
            return mine
        paths = [self.assets_dir / source.figure_path for source in sources if source.figure_path]
        return mine + [str(p) for p in paths if p.is_file()][: s.images]


def _history_messages(history: Sequence[Turn]) -> list[Message]:
    out: list[Message] = []
    for turn in history:
        out += [{"role": "user", "content": turn.question}, {"role": "assistant", "content": turn.answer}]
    return out


class AnswerStream:
    """`for piece in stream: ...` yields the draft's text pieces; `stream.answer` is the verified answer
    (available once the stream is exhausted); `stream.cancel()` stops generation."""

    def __init__(self, events: Iterator[StreamEvent], cancel: threading.Event) -> None:
        self._events = events
        self._cancel = cancel
        self.answer: Answer | None = None
        self.sources: tuple[Source, ...] = ()

    def events(self) -> Iterator[StreamEvent]:
        for event in self._events:
            if event.type == "answer":
                self.answer = event.answer
            elif event.type == "sources":
                self.sources = event.sources
            yield event

    def __iter__(self) -> Iterator[str]:
        for event in self.events():
            if event.type == "token":
                yield event.text

    def cancel(self) -> None:
        self._cancel.set()

    def result(self) -> Answer:
        """Drain the stream (if needed) and return the verified answer."""
        for _ in self.events():
            pass
        assert self.answer is not None
        return self.answer


def _quote_cited(raw: str, sources: Sequence[Source], query: str, embedder: Any) -> str:
    """The best matching sentence of the sources the model cited, as a cited answer ('' if none fits)."""
    from assistant.generators.extractive import ExtractiveGenerator

    if parse_claims(raw):
        return ""  # the model made claims and verification rejected them: that is an abstention, not a gap
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", raw)}
    chosen = [s for s in sources if s.n in cited]
    ranked = ExtractiveGenerator(embedder=embedder).rank(query, chosen)
    if not ranked:
        return ""
    _, n, sentence = ranked[0]
    return f"{sentence.rstrip(' .')} [{n}]."
