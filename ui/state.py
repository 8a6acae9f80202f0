"""The UI's configuration (read once at the edge) and its per-session state."""

from __future__ import annotations

import argparse
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from assistant.types import Answer

MODALITIES = ("text", "table", "figure")


@dataclass(frozen=True)
class UIConfig:
    """Everything the sidebar can change. `None` model fields mean: what the KB was built with / the default."""

    kb_dir: str = ""
    text_model: str | None = None
    image_model: str | None = None
    model: str | None = None  # generator spec (assistant.generators.build_generator)
    temperature: float = 0.0
    max_tokens: int = 160
    top_k: int = 8
    modalities: tuple[str, ...] = MODALITIES
    debug: bool = False

    def answer_options(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "top_k": self.top_k}

    def with_(self, **changes: Any) -> UIConfig:
        return replace(self, **changes)


def search_filters(cfg: UIConfig) -> Any:
    """The SDK's search filters for the chosen modalities (None: everything)."""
    if set(cfg.modalities) >= set(MODALITIES) or not cfg.modalities:
        return None
    from retrieval.types import SearchFilters

    return SearchFilters(modalities=tuple(cfg.modalities))


def parse_args(argv: Sequence[str]) -> UIConfig:
    """The script arguments `citeline ui` passes after `--` (unknown ones are ignored)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--kb", default="")
    parser.add_argument("--text-model", default=None)
    parser.add_argument("--image-model", default=None)
    parser.add_argument("--model", default=None)
    args, _ = parser.parse_known_args(list(argv))
    return UIConfig(kb_dir=args.kb, text_model=args.text_model, image_model=args.image_model, model=args.model)


@dataclass
class ChatItem:
    """One turn shown in the chat: the user's message and the assistant's answer, or an image search."""

    question: str
    answer: Answer | None = None
    hits: list[Any] = field(default_factory=list)  # retrieval.types.Hit, for an image search
    image: str | None = None  # the query image file, when there was one
    error: str | None = None
    chart: Any = None  # assistant.charts.Chart, when the turn asked for a chart


class Session:
    """Typed access to `st.session_state` (any mutable mapping, so tests can pass a dict)."""

    def __init__(self, state: MutableMapping[str, Any] | Any) -> None:
        self.state = state
        state.setdefault("items", [])
        state.setdefault("focus", None)  # (item index, source number) chosen by a citation chip
        state.setdefault("debug_hits", {})
        state.setdefault("report", None)

    @property
    def items(self) -> list[ChatItem]:
        return self.state["items"]

    def add(self, item: ChatItem) -> None:
        self.items.append(item)
        self.state["focus"] = (len(self.items) - 1, None)

    def clear(self) -> None:
        self.state["items"] = []
        self.state["focus"] = None
        self.state["debug_hits"] = {}

    def focus(self) -> tuple[int, int | None] | None:
        """Which turn the sources panel shows (and which source in it): the chosen one, else the latest."""
        focus = self.state.get("focus")
        if focus is not None and 0 <= focus[0] < len(self.items):
            return focus
        return (len(self.items) - 1, None) if self.items else None

    def set_focus(self, index: int, n: int | None) -> None:
        self.state["focus"] = (index, n)

    def history(self, upto: int | None = None) -> list[Answer]:
        """The answered turns so far (for follow-up questions)."""
        items = self.items if upto is None else self.items[:upto]
        return [i.answer for i in items if i.answer is not None and not i.answer.abstained]

    def ensure_kb(self, kb_dir: str) -> None:
        """A different KB starts a new conversation."""
        if self.state.get("kb_dir") != kb_dir:
            self.clear()
            self.state["report"] = None
            self.state["kb_dir"] = kb_dir
