"""The exception tree. Every message says what went wrong and what to do about it."""

from __future__ import annotations

import re


class CitelineError(Exception):
    """Base class for every error Citeline raises on purpose."""


class FileError(CitelineError):
    """One input file could not be ingested; the rest of the folder goes on."""


class PasswordRequired(FileError):
    def __init__(self, path: str, tried: int = 0) -> None:
        hint = "none of the given passwords opened it; " if tried else ""
        super().__init__(
            f"{path} is encrypted: {hint}pass its password with --password PW (repeatable) "
            "or --passwords-file FILE (one password per line)"
        )


class CorruptFile(FileError):
    pass


class UnsupportedFile(FileError):
    pass


class ResourceLimit(FileError):
    """A file exceeded the per-file time, memory or size bound."""


class FileVanished(FileError):
    """The file was deleted or moved after the ingest found it."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} was deleted or moved while the ingest ran; nothing was stored for it "
                         "(ingest it again if it comes back, or --prune to forget it)")


_ALLOC_FAILED = re.compile(r"\b(m|re|c)alloc \(\d+ bytes\) failed|out of memory|cannot allocate memory|"
                           r"failed to map segment", re.I)


def is_out_of_memory(exc: BaseException) -> bool:
    """Python's MemoryError, MuPDF's failed allocation (a RuntimeError 'malloc (N bytes) failed') or a library
    that cannot be mapped (ImportError) under the worker's address-space bound: none of them is a damaged file."""
    return isinstance(exc, MemoryError) or bool(_ALLOC_FAILED.search(str(exc)))


def out_of_memory(path: str, what: str = "the file") -> ResourceLimit:
    """The error for a file whose parsing hit this process's address-space bound (set by ingest.isolation)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    bound = "" if soft == resource.RLIM_INFINITY else f"{soft / 1024**2:.0f} MiB "
    return ResourceLimit(f"{path}: parsing ran out of the {bound}per-file memory bound; split or simplify {what}, "
                         "or raise the bound (citeline ingest --file-memory-mb MB)")


class MissingDependency(CitelineError):
    def __init__(self, what: str, install: str) -> None:
        super().__init__(f"{what} is not installed: run `{install}`")
