"""Conversation-aware query rewriting: turn a follow-up ("and its battery?") into a stand-alone query.

The answering stage passes the conversation so far; the searcher calls its rewriter before retrieving. The
default folds the previous turn's salient terms (names, numbers, content words) into follow-ups only, and
leaves self-contained questions alone. An LLM rewriter fits the same one-method protocol.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from retrieval.lexical import STOP_WORDS, query_terms


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str = ""


@runtime_checkable
class QueryRewriter(Protocol):
    def rewrite(self, query: str, history: Sequence[Turn]) -> str: ...


class IdentityRewriter:
    def rewrite(self, query: str, history: Sequence[Turn]) -> str:
        return query


_ANAPHORA_TEXT = "it its they them their theirs this that these those he she him his her hers there one ones same"
_ANAPHORA = frozenset(_ANAPHORA_TEXT.split())
_FOLLOW_UP_STARTS = ("and ", "what about", "how about", "also ", "but ", "so ", "then ", "why", "and?", "what else")
_ENTITY = re.compile(r"\b(?:[A-Z][\w-]*|\d[\w.,%-]*)(?:\s+(?:[A-Z][\w-]*|\d[\w.,%-]*))*")
_QUESTION_TEXT = ("what which who whom whose when where why how does do did is are was were can could should would"
                  " will according tell give list show explain describe")
_QUESTION_WORDS = frozenset(_QUESTION_TEXT.split())


def is_follow_up(query: str) -> bool:
    words = re.findall(r"[\w']+", query.lower())
    if not words:
        return False
    content = [w for w in words if w not in STOP_WORDS and w not in _QUESTION_WORDS]
    return (any(w in _ANAPHORA for w in words) or query.lower().lstrip().startswith(_FOLLOW_UP_STARTS)
            or len(content) <= 1)


def salient_terms(text: str, limit: int = 6) -> list[str]:
    """Capitalised phrases and numbers first (likely entities), then other content words."""
    entities = [m.group(0) for m in _ENTITY.finditer(text)
                if m.group(0).lower() not in STOP_WORDS | _QUESTION_WORDS]
    words = [w for w in query_terms(text) if w not in _QUESTION_WORDS]
    out: list[str] = []
    for term in entities + words:
        if term.lower() not in {o.lower() for o in out} and not any(term.lower() in o.lower() for o in out):
            out.append(term)
    return out[:limit]


class FollowUpRewriter:
    def __init__(self, limit: int = 6) -> None:
        self.limit = limit

    def rewrite(self, query: str, history: Sequence[Turn]) -> str:
        if not history or not is_follow_up(query):
            return query
        have = set(query_terms(query))
        extra = [t for t in salient_terms(history[-1].question, self.limit)
                 if not set(query_terms(t)) <= have]
        return f"{query} {' '.join(extra)}".strip() if extra else query
