"""The integrity check of a PostgreSQL knowledge base (`citeline check --kb postgresql://...`), in one
REPEATABLE READ snapshot: the row invariants the database does not enforce by itself (foreign keys and typed
vector columns enforce the rest), the text vector of every chunk, the vector spaces the manifest names, and the
assets on disk."""

from __future__ import annotations

import json
from typing import Any

from retrieval.integrity import Problem
from retrieval.store import pg_schema as sch


def check_postgres(store: Any) -> list[Problem]:
    problems: list[Problem] = []
    with store.snapshot(), store._conn() as conn:
        for kind, what, query in sch.CHECKS:
            n = conn.execute(query).fetchone()[0]
            if n:
                problems.append(Problem(kind, f"{n} {what}"))
        problems += _spaces(conn)
        problems += _assets(store, conn)
    return problems


def _spaces(conn: Any) -> list[Problem]:
    raw = conn.execute("SELECT value FROM meta WHERE key='manifest'").fetchone()
    spaces = json.loads(raw[0]).get("spaces", {}) if raw else {}
    tables = dict(conn.execute("SELECT space, dimension FROM spaces").fetchall())
    out: list[Problem] = []
    for space, dimension in tables.items():
        if space not in spaces:
            out.append(Problem("orphan", f"vectors in space '{space}', which the manifest does not have"))
        elif int(spaces[space]["dimension"]) != int(dimension):
            out.append(Problem("catalog", f"'{space}' vectors of {dimension} dimensions, the manifest says "
                                          f"{spaces[space]['dimension']} (re-embed: `citeline reindex`)"))
    chunks = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    if "text" in tables:
        missing = conn.execute(f"SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM "
                               f"{sch.space_table('text')}"
                               " v WHERE v.id = c.id)").fetchone()[0]
        if missing:
            out.append(Problem("orphan", f"{missing} chunks without their text vector"))
    elif chunks and "text" in spaces:
        out.append(Problem("orphan", f"{chunks} chunks without their text vector"))
    elif chunks:
        out.append(Problem("manifest", "chunks are stored but the manifest has no text space"))
    if "image" in tables:
        n = conn.execute(f"SELECT count(*) FROM {sch.space_table('image')} v JOIN chunks c ON c.id = v.id"
                         " WHERE c.kind != 'figure'").fetchone()[0]
        if n:
            out.append(Problem("orphan", f"{n} image vectors of a chunk that is not a figure"))
    return out


def _assets(store: Any, conn: Any) -> list[Problem]:
    rows = conn.execute("SELECT thumbnail FROM pages WHERE thumbnail IS NOT NULL"
                        " UNION ALL SELECT figure_path FROM chunks WHERE figure_path IS NOT NULL").fetchall()
    missing = [rel for (rel,) in rows if not (store.assets_dir / rel).is_file()]
    out = [Problem("assets", f"{len(missing)} page thumbnails or figure crops are missing, e.g. {missing[0]}"
                             " (re-ingest the file: `citeline remove` it, then `citeline ingest` it)")
           ] if missing else []
    known = {r[0] for r in conn.execute("SELECT doc_id FROM documents")}
    orphans = store.assets.orphans(known)
    if orphans:
        out.append(Problem("leftover", f"{len(orphans)} asset folders of no document, e.g. {orphans[0].name}"
                                       " (removed by the next write)", healed=True))
    return out
