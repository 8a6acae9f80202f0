"""The Python SDK: three lines to a cited answer.

    from assistant import Citeline
    kb = Citeline("my-kb").ingest("docs/")
    print(kb.ask("What is the battery life?").text)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.config import Settings
from retrieval.ingestor import Ingestor, IngestReport, ProgressFn
from retrieval.kb import KBSettings, KnowledgeBase, default_model_factory


class Citeline:
    def __init__(self, kb_dir: str | os.PathLike[str] | None = None, *, settings: Settings | None = None,
                 text_model: str | None = None, image_model: str | None = None, model_factory: Any = None) -> None:
        base = settings or Settings.from_env(kb_dir)
        kb_settings = KBSettings(**{**base.kb.__dict__, "text_model": text_model or base.kb.text_model,
                                    "image_model": image_model or base.kb.image_model})
        self.settings = Settings(kb_dir=Path(kb_dir).expanduser() if kb_dir else base.kb_dir, kb=kb_settings)
        self._factory = _memoize(model_factory or default_model_factory)  # models shared by reader and writer
        self._reader: KnowledgeBase | None = None
        self.last_report: IngestReport | None = None

    @property
    def kb_dir(self) -> Path:
        return self.settings.kb_dir

    # -- writing ----------------------------------------------------------------------------------------
    def ingest(self, *paths: str | os.PathLike[str], passwords: Sequence[str] = (), prune: bool = False,
               progress: ProgressFn | None = None) -> Citeline:
        """Ingest files or folders (incremental: unchanged files are skipped). Returns self for chaining;
        the per-file outcome is in `last_report`."""
        with self._open_writer() as kb:
            self.last_report = Ingestor(kb, passwords, progress).run([str(p) for p in paths], prune=prune)
        self._refresh()
        return self

    def remove(self, *paths: str | os.PathLike[str]) -> list[str]:
        with self._open_writer() as kb:
            removed = kb.remove([str(p) for p in paths])
        self._refresh()
        return removed

    def reindex(self) -> dict[str, int]:
        with KnowledgeBase.open(self.kb_dir, self.settings.kb, writable=True, factory=self._factory,
                                check_manifest=False) as kb:
            counts = kb.reindex()
        self._refresh()
        return counts

    # -- reading ----------------------------------------------------------------------------------------
    @property
    def kb(self) -> KnowledgeBase:
        """A read-only view of the KB (usable while another process ingests)."""
        if self._reader is None:
            self._reader = KnowledgeBase.open(self.kb_dir, self.settings.kb, factory=self._factory)
        return self._reader

    def status(self) -> dict[str, Any]:
        return self.kb.status()

    def documents(self) -> list[Any]:
        return self.kb.catalog.documents()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> Citeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_writer(self) -> KnowledgeBase:
        return KnowledgeBase.open(self.kb_dir, self.settings.kb, writable=True, factory=self._factory)

    def _refresh(self) -> None:
        self.close()


def _memoize(factory: Any) -> Any:
    built: dict[tuple[str, str], Any] = {}

    def get(role: str, spec: str) -> Any:
        if (role, spec) not in built:
            built[(role, spec)] = factory(role, spec)
        return built[(role, spec)]

    return get
