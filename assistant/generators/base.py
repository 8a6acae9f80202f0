"""The generator seam: one tiny streaming protocol (`Generator`), an optional judging face (`Judge`), and the
source budget each backend declares."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from assistant.types import Message, Sampling


@dataclass(frozen=True)
class Budget:
    """How much source text a generator is shown: a declared profile per backend, overridable per call
    (AnswerSettings.context_tokens / source_tokens / max_sources)."""

    context_tokens: int
    source_tokens: int
    max_sources: int


# the offline 0.5B on 2 CPU cores reads ~190 prompt tokens/s: a small budget keeps the first token under 2 s
SMALL_BUDGET = Budget(context_tokens=300, source_tokens=120, max_sources=4)
# endpoints and VLMs have long contexts and fast prompt processing: thousands of tokens of evidence
LARGE_BUDGET = Budget(context_tokens=6000, source_tokens=800, max_sources=10)


def budget_of(generator: Any) -> Budget:
    """A generator's declared `budget`, or the small profile for one that declares none."""
    budget = getattr(generator, "budget", None)
    return budget if isinstance(budget, Budget) else SMALL_BUDGET


@runtime_checkable
class Generator(Protocol):
    name: str
    supports_images: bool  # True when `images` (file paths) reach the model as pixels
    cites_reliably: bool  # False: the model gets the plain prompt and the verifier attributes its sentences

    def stream(self, messages: Sequence[Message], images: Sequence[str] = (),
               sampling: Sampling | None = None) -> Iterator[str]:
        """Yield the reply's text pieces as they are produced. Closing the iterator cancels generation."""
        ...


@runtime_checkable
class Judge(Protocol):
    """An optional second face of a generator: how strongly the model would reply "Yes" rather than "No"."""

    def yes_no(self, messages: Sequence[Message]) -> float:
        """The log-odds of "Yes" over "No" as the first word of the reply to `messages`."""
        ...


def generate(generator: Generator, messages: Sequence[Message], images: Sequence[str] = (),
             sampling: Sampling | None = None) -> str:
    """The whole reply at once."""
    return "".join(generator.stream(messages, images, sampling))
