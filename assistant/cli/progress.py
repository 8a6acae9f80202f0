"""A dependency-free progress line for stderr (files and pages), redrawn in place on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from retrieval.kb_writer import Progress


class ProgressBar:
    def __init__(self, stream: TextIO | None = None, width: int = 28) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()
        self._last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        done = p.files_done >= p.files_total
        if self.tty and not done and now - self._last < 0.1:
            return
        self._last = now
        frac = p.files_done / p.files_total if p.files_total else 1.0
        bar = "#" * int(frac * self.width) + "-" * (self.width - int(frac * self.width))
        elapsed = now - self.started
        rate = p.pages_done / elapsed if elapsed > 0 else 0.0
        name = p.path.rsplit("/", 1)[-1][:40]
        line = (f"[{bar}] {p.files_done}/{p.files_total} files  {p.pages_done} pages  {rate:5.1f} pages/s  "
                f"{p.status:<9} {name}")
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(160) + ("\n" if done else ""))
        elif p.path:
            self.stream.write(line + "\n")
        self.stream.flush()
