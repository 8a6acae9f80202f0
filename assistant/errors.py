"""The exception tree, findable in one place: the assistant's own errors (generators, endpoints, entailment,
chat models, charts), and the lower stages' re-exported (`ingest.errors`, `retrieval.errors`), so an SDK user
catches any of them from here. Every message says what went wrong and what to do about it."""

from __future__ import annotations

from collections.abc import Sequence

from ingest.errors import (
    CitelineError,
    CorruptFile,
    FileError,
    FileVanished,
    MissingDependency,
    PasswordRequired,
    ResourceLimit,
    UnsupportedFile,
)
from retrieval.errors import (
    EmbedderChecksumError,
    EmbedderMismatch,
    KBError,
    KBLocked,
    SearchError,
    TextQueriesUnsupported,
    UnknownEmbedder,
)


class UnknownGenerator(CitelineError, ValueError):
    def __init__(self, spec: str, choices: Sequence[str]) -> None:
        super().__init__(f"unknown model {spec!r}; choose one of: {', '.join(choices)} "
                         "(`citeline models list` shows the known models)")


class CannotJudge(CitelineError, ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"model {name!r} cannot judge whether the sources answer a question (GGUF and "
                         "OpenAI-compatible models can): leave min_answerable (--min-answerable) unset")


class EndpointError(CitelineError):
    """The model endpoint failed. `status` is what our own HTTP server answers for it (502: the upstream is
    broken; 503: it is overloaded, try later; 504: it did not answer in time); `headers` go with that answer."""

    status = 502

    def __init__(self, message: str, *, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": self.retry_after} if self.retry_after else None


class EndpointBusy(EndpointError):
    status = 503  # HTTP 429 from the endpoint: its rate limit, not our client's fault


class EndpointTimeout(EndpointError):
    status = 504


class UnknownEntailment(CitelineError, ValueError):
    def __init__(self, spec: str, choices: Sequence[str]) -> None:
        super().__init__(f"unknown entailment backend {spec!r}; choose one of: {', '.join(choices)}")


class ChatModelMissing(CitelineError):
    """A chat model (GGUF) is not installed; the message says how to pull it."""


class ChatModelChecksumError(CitelineError):
    """A chat model file on disk is not the one the registry names (size or sha256)."""


class ChartRenderError(CitelineError, ValueError):
    """A chart could not be written (unknown format, nothing plotted)."""


# the names these had before the stages got one error module each, kept for SDK users who catch them
ModelChecksumError = EmbedderChecksumError
ModelMissing = ChatModelMissing
ModelCorrupt = ChatModelChecksumError

__all__ = [
    "CannotJudge", "ChartRenderError", "ChatModelChecksumError", "ChatModelMissing", "CitelineError", "CorruptFile",
    "EmbedderChecksumError", "EmbedderMismatch", "EndpointBusy", "EndpointError", "EndpointTimeout", "FileError",
    "FileVanished", "KBError", "KBLocked", "MissingDependency", "ModelChecksumError", "ModelCorrupt", "ModelMissing",
    "PasswordRequired", "ResourceLimit", "SearchError", "TextQueriesUnsupported", "UnknownEmbedder",
    "UnknownEntailment", "UnknownGenerator", "UnsupportedFile",
]
