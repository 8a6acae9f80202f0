"""Multi-turn chat: each question is answered with the conversation so far (follow-ups are rewritten into
standalone queries before searching, and the last turns are shown to the model)."""

from __future__ import annotations

from collections.abc import Iterator

from assistant.answer import Answerer, AnswerSettings, AnswerStream
from assistant.types import Answer, StreamEvent
from retrieval.rewrite import Turn
from retrieval.types import SearchFilters

__all__ = ["ChatSession", "Turn"]


class ChatSession:
    def __init__(self, answerer: Answerer, filters: SearchFilters | None = None, max_turns: int = 20,
                 settings: AnswerSettings | None = None) -> None:
        self.answerer = answerer
        self.filters = filters
        self.settings = settings  # this session's AnswerSettings (None: the answerer's own)
        self.max_turns = max_turns
        self.history: list[Turn] = []
        self.answers: list[Answer] = []

    def ask(self, question: str, image: str | None = None) -> Answer:
        """The answer to `question` given the turns so far; `image`: a picture the question is about."""
        answer = self.answerer.ask(question, self.history, self.filters, image=image, settings=self.settings)
        self._remember(answer)
        return answer

    def stream(self, question: str, image: str | None = None) -> AnswerStream:
        """Like `Answerer.stream`; the turn joins the history when the stream finishes."""
        stream = self.answerer.stream(question, tuple(self.history), self.filters, image=image,
                                      settings=self.settings)
        inner = stream._events

        def recorded() -> Iterator[StreamEvent]:
            for event in inner:
                if event.type == "answer" and event.answer is not None:
                    self._remember(event.answer)
                yield event

        stream._events = recorded()
        return stream

    def reset(self) -> None:
        self.history.clear()
        self.answers.clear()

    def _remember(self, answer: Answer) -> None:
        self.history.append(Turn(answer.question, answer.text))
        self.answers.append(answer)
        del self.history[: -self.max_turns]
        del self.answers[: -self.max_turns]
