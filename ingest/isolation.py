"""Parse files in a separate, bounded process: per-file wall-clock timeout and an address-space limit.

A file that hangs the parser is killed at the timeout; one that exhausts memory dies alone. Either way the
worker is restarted and the file is reported as failed with a message that says which bound it hit.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ingest.errors import CorruptFile, FileError, FileVanished, ResourceLimit, UnsupportedFile
from ingest.protocols import ParseOptions
from ingest.types import ParsedDocument, document_from_json

_ERRORS: dict[str, type[FileError]] = {
    "PasswordRequired": FileError,  # the worker already formatted the message (how to pass a password)
    "CorruptFile": CorruptFile,
    "UnsupportedFile": UnsupportedFile,
    "ResourceLimit": ResourceLimit,
    "FileVanished": FileError,  # message formatted by the worker
    "FileError": FileError,
}


@dataclass(frozen=True)
class Limits:
    seconds_per_file: float = 300.0
    seconds_per_page: float = 5.0  # added to the base for long documents
    memory_bytes: int = 3 * 1024**3
    max_file_bytes: int = 1024**3
    # parser processes beside the embedder: 2 on a 2-core machine (measured best there), up to 4 on bigger ones
    workers: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))


class IsolatedParser:
    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._proc: subprocess.Popen[str] | None = None
        self._out: Any = None

    def parse(self, path: str, sha256: str, options: ParseOptions, pages_hint: int = 0) -> ParsedDocument:
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            raise FileVanished(path) from None
        too_big = size_error(path, size, self.limits)
        if too_big is not None:
            raise too_big
        request = {"path": path, "sha256": sha256, "options": asdict(options)}
        timeout = self.limits.seconds_per_file + self.limits.seconds_per_page * pages_hint
        response = self._roundtrip(request, timeout, path)
        if response.get("ok"):
            return document_from_json(response["doc"])
        raise _ERRORS.get(response.get("error_type", ""), FileError)(response.get("message", "parse failed"))

    def close(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> IsolatedParser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- process management ----------------------------------------------------------------------------
    def _start(self) -> None:
        read_fd, write_fd = os.pipe()
        limit = self.limits.memory_bytes

        def bound() -> None:  # runs in the child before exec
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.worker", str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(write_fd,),
            preexec_fn=bound,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )
        os.close(write_fd)
        self._out = os.fdopen(read_fd, "r", encoding="utf-8")

    def _roundtrip(self, request: dict[str, Any], timeout: float, path: str) -> dict[str, Any]:
        if self._proc is None or self._proc.poll() is not None:
            self.close()
            self._start()
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            self.close()
            raise CorruptFile(f"{path}: the parser process could not start") from None
        line = self._readline(timeout)
        if line is None:
            code = self._proc.poll()
            self.close()
            if code is None:
                raise ResourceLimit(
                    f"{path}: parsing took longer than the {timeout:g} s per-file time bound and was stopped; "
                    "split the file, or raise the bound (citeline ingest --file-timeout SECONDS)"
                )
            reason = "out of memory" if code in (-9, -6, 1) else f"exit code {code}"
            raise ResourceLimit(
                f"{path}: the parser process died ({reason}); the file exceeds the "
                f"{_mib(self.limits.memory_bytes)} per-file memory bound or is malformed; split or re-save it, "
                "or raise the bound (citeline ingest --file-memory-mb MB)"
            )
        return json.loads(line)

    def _readline(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        sel.register(self._out, selectors.EVENT_READ)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                if sel.select(min(remaining, 1.0)):
                    line = self._out.readline()
                    return line or None
                if self._proc is not None and self._proc.poll() is not None:
                    # the process died; drain anything it wrote before dying
                    line = self._out.readline()
                    return line or None
        finally:
            sel.close()


def size_error(path: str, size: int, limits: Limits) -> ResourceLimit | None:
    """The error for a file over the per-file size bound (checked before anything reads it), else None."""
    if size <= limits.max_file_bytes:
        return None
    return ResourceLimit(f"{path} is {_mib(size)}, over the {_mib(limits.max_file_bytes)} per-file size bound; "
                         "split it, or raise the bound (citeline ingest --max-file-mb MB)")


def _mib(n: int) -> str:
    return f"{n / 1024**2:.1f} MiB" if n < 10 * 1024**2 else f"{n / 1024**2:.0f} MiB"
