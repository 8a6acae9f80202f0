"""One writer at a time: an advisory lock on `<kb>/lock` that names its holder. The OS frees it on any exit,
kill -9 included, so a crashed ingest never leaves a KB locked.

A second writer does not wait: it fails at once with `KBLocked`, whose message names the holder (pid, host,
command, since) — `citeline ingest|remove|reindex` exit 2 with it. Readers take no lock."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from retrieval.errors import KBLocked


class WriterLock:
    def __init__(self, kb_dir: Path) -> None:
        self.path = kb_dir / "lock"
        self._fd: int | None = None

    def acquire(self) -> WriterLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise KBLocked(
                f"the knowledge base at {self.path.parent} is being written by {holder}; wait for it to finish "
                "(readers such as search and ask can still use the KB meanwhile)"
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200]}
        data = json.dumps(info).encode()
        # one write over the old holder, then cut what is left of it: a concurrent reader sees the old holder
        # or the new one (its parser reads the first JSON object), never an empty file
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> WriterLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        info, _ = json.JSONDecoder().raw_decode(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return "another process"
    if not info or not isinstance(info, dict):
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')} (`{info.get('command')}`, since {info.get('since')})"
