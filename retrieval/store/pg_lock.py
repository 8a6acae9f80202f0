"""The single-writer lock of a PostgreSQL knowledge base: a session advisory lock on a dedicated connection, held
for the writer's life. The server frees it when that connection ends, kill -9 of the writer included, so a
crashed ingest never leaves the KB locked. A second writer fails at once, naming the holder (as the local
backend's `retrieval.lock`)."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from typing import Any

from retrieval.errors import KBLocked
from retrieval.store.pg_schema import SCHEMA


def acquire_writer_lock(psycopg: Any, dsn: str, location: str) -> Any:
    """The connection holding the lock (close it to release), or `KBLocked`."""
    conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    conn.execute(f"SET search_path = {SCHEMA}, public")
    got = conn.execute("SELECT pg_try_advisory_lock(hashtext('citeline-writer'))").fetchone()[0]
    if not got:
        row = conn.execute("SELECT holder FROM writer WHERE id = 1").fetchone()
        conn.close()
        raise _locked(location, row)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200]}
    conn.execute("INSERT INTO writer(id, holder) VALUES(1, %s) ON CONFLICT (id) DO UPDATE SET holder ="
                 " EXCLUDED.holder", (json.dumps(info),))
    return conn


def check_writer_lock(psycopg: Any, dsn: str, location: str) -> None:
    """`KBLocked` (naming the holder) while a writer holds the lock; writes nothing, holds nothing."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        got = conn.execute("SELECT pg_try_advisory_lock(hashtext('citeline-writer'))").fetchone()[0]
        if got:
            conn.execute("SELECT pg_advisory_unlock(hashtext('citeline-writer'))")
            return
        try:
            row = conn.execute(f"SELECT holder FROM {SCHEMA}.writer WHERE id = 1").fetchone()
        except psycopg.Error:  # a writer still creating the schema
            row = None
    raise _locked(location, row)


def _locked(location: str, row: Any) -> KBLocked:
    return KBLocked(f"the knowledge base at {location} is being written by {_holder(row)}; wait for it to finish "
                    "(readers such as search and ask can still use the KB meanwhile)")


def _holder(row: Any) -> str:
    try:
        info = json.loads(row[0]) if row else {}
    except ValueError:
        info = {}
    if not info:
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')} (`{info.get('command')}`, since {info.get('since')})"
