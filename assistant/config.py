"""The typed configuration read at the edges (CLI, UI, server) and turned into objects in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from assistant.answer import AnswerSettings
from retrieval.kb import default_kb_dir
from retrieval.settings import KBSettings
from retrieval.store import kb_location


@dataclass(frozen=True)
class Settings:
    kb_dir: Path | str = field(default_factory=default_kb_dir)  # a folder, or a postgresql:// DSN (kept a str)
    kb: KBSettings = field(default_factory=KBSettings)
    model: str = "qwen"  # the generator spec (assistant.generators.build_generator); CITELINE_MODEL
    answer: AnswerSettings = field(default_factory=AnswerSettings)  # sampling, system prompt, verification

    @classmethod
    def from_env(cls, kb_dir: str | os.PathLike[str] | None = None, **kb_overrides: object) -> Settings:
        """CITELINE_HOME picks the default KB folder; explicit arguments win."""
        base = cls()
        kb = replace(base.kb, **{k: v for k, v in kb_overrides.items() if v is not None})  # type: ignore[arg-type]
        model = os.environ.get("CITELINE_MODEL") or base.model
        return replace(base, kb_dir=kb_location(kb_dir) if kb_dir else base.kb_dir, kb=kb, model=model)
