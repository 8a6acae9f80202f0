"""Opening a store by location: a `postgresql://` DSN, a folder whose `store.json` names a DSN, or a folder (the
local backend). The postgres backend (and psycopg) is imported only when a DSN is opened."""

from __future__ import annotations

import json
from pathlib import Path

from retrieval.errors import KBError
from retrieval.store.protocol import Store, is_dsn

STORE_FILE = "store.json"  # {"dsn": "postgresql://...", "assets": "/path"}: a folder that points at a server


def resolve_location(location: str | Path) -> tuple[str, Path | None]:
    """(DSN or folder, assets folder named by a pointer file). A DSN is returned as is, never made a Path."""
    if is_dsn(location):
        return str(location), None
    root = Path(location).expanduser()
    pointer = root / STORE_FILE
    if pointer.is_file():
        try:
            config = json.loads(pointer.read_text())
        except ValueError as exc:
            raise KBError(f"{pointer} is not valid JSON: {exc}") from exc
        dsn = config.get("dsn") if isinstance(config, dict) else None
        if not is_dsn(dsn):
            raise KBError(f"{pointer} must name a PostgreSQL server: {{\"dsn\": \"postgresql://...\"}}")
        assets = config.get("assets")
        return str(dsn), Path(assets).expanduser() if assets else root / "assets"
    return str(root), None


def check_writable(location: str | Path) -> None:
    """`KBLocked`, naming the holder, while another writer holds the KB at `location` (a quick look before
    queuing work that would only fail); takes no lock and writes nothing."""
    target, _ = resolve_location(location)
    if is_dsn(target):
        from retrieval.store.postgres import check_writer

        check_writer(target)
        return
    from retrieval.lock import WriterLock

    if (Path(target) / "lock").exists():
        WriterLock(Path(target)).acquire().release()


def open_store(location: str | Path, *, writable: bool = False, assets_dir: str | Path | None = None) -> Store:
    """The store at `location`; a writable one holds the single-writer lock until `close()`."""
    target, pointed_assets = resolve_location(location)
    if is_dsn(target):
        from retrieval.store.postgres import PostgresStore

        assets = Path(assets_dir).expanduser() if assets_dir else pointed_assets
        return PostgresStore(target, writable=writable, assets_dir=assets)
    from retrieval.store.local import LocalStore

    return LocalStore(Path(target), writable=writable)
