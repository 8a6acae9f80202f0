"""A scripted generator for tests: no model, deterministic, records what it was asked."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from assistant.types import Message, Sampling

Script = str | Sequence[str] | Callable[[Sequence[Message]], str]


@dataclass
class Call:
    messages: list[Message]
    images: list[str]
    sampling: Sampling | None


@dataclass
class ScriptedGenerator:
    """Replies with `script` (a string, a list consumed one reply per call, or a function of the messages).

    The reply is streamed in word-sized pieces; `delay` seconds pass before each piece (to test streaming
    and cancellation). `calls` records every request.
    """

    script: Script = "I could not find this in your documents."
    supports_images: bool = False
    cites_reliably: bool = True
    delay: float = 0.0
    name: str = "fake"
    calls: list[Call] = field(default_factory=list)
    _turn: int = 0

    def reply(self, messages: Sequence[Message]) -> str:
        if callable(self.script):
            return self.script(messages)
        if isinstance(self.script, str):
            return self.script
        text = self.script[min(self._turn, len(self.script) - 1)]
        self._turn += 1
        return text

    def stream(self, messages: Sequence[Message], images: Sequence[str] = (),
               sampling: Sampling | None = None) -> Iterator[str]:
        self.calls.append(Call([dict(m) for m in messages], list(images), sampling))
        text = self.reply(messages)
        if sampling is not None and sampling.stop:
            for stop in sampling.stop:
                text = text.split(stop)[0]
        for piece in re.findall(r"\S+\s*|\s+", text):
            if self.delay:
                time.sleep(self.delay)
            yield piece


@dataclass
class ScriptedJudge(ScriptedGenerator):
    """A scripted generator that also judges (`assistant.generators.Judge`): `judgement` is the log-odds it
    returns (a number, or a function of the messages); `judged` records the messages it was asked about."""

    judgement: float | Callable[[Sequence[Message]], float] = 0.0
    judged: list[list[Message]] = field(default_factory=list)

    def yes_no(self, messages: Sequence[Message]) -> float:
        self.judged.append([dict(m) for m in messages])
        return self.judgement(messages) if callable(self.judgement) else float(self.judgement)
