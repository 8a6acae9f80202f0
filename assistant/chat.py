"""Multi-turn chat: each question is answered with the conversation so far (follow-ups are rewritten into
standalone queries before searching, and the last turns are shown to the model)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from assistant.answer import Answerer, AnswerStream
from assistant.types import Answer, StreamEvent
from retrieval.rewrite import Turn
from retrieval.types import SearchFilters


class ChatSession:
    def __init__(self, answerer: Answerer, filters: SearchFilters | None = None, max_turns: int = 20,
                 with_image: Callable[[str], Answerer] | None = None) -> None:
        self.answerer = answerer
        self.filters = filters
        self.with_image = with_image  # an answerer like `answerer` that also searches with a query image
        self.max_turns = max_turns
        self.history: list[Turn] = []
        self.answers: list[Answer] = []

    def ask(self, question: str, image: str | None = None) -> Answer:
        """The answer to `question` given the turns so far; `image`: a picture the question is about."""
        answer = self._answerer(image).ask(question, self.history, self.filters)
        self._remember(answer)
        return answer

    def stream(self, question: str, image: str | None = None) -> AnswerStream:
        """Like `Answerer.stream`; the turn joins the history when the stream finishes."""
        stream = self._answerer(image).stream(question, tuple(self.history), self.filters)
        inner = stream._events

        def recorded() -> Iterator[StreamEvent]:
            for event in inner:
                if event.type == "answer" and event.answer is not None:
                    self._remember(event.answer)
                yield event

        stream._events = recorded()
        return stream

    def _answerer(self, image: str | None) -> Answerer:
        if image is None:
            return self.answerer
        if self.with_image is None:
            raise ValueError("this chat session cannot take a query image")
        return self.with_image(image)

    def reset(self) -> None:
        self.history.clear()
        self.answers.clear()

    def _remember(self, answer: Answer) -> None:
        self.history.append(Turn(answer.question, answer.text))
        self.answers.append(answer)
        del self.history[: -self.max_turns]
        del self.answers[: -self.max_turns]
