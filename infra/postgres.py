"""PostgreSQL for the local service stack: finding the server binaries, running them, probing a
server and creating or dropping databases.

``infra.stack`` either uses a PostgreSQL that already answers or ``initdb``-s and ``pg_ctl``-s a
cluster of its own, and the integration tests create and drop throw-away databases on the same
server. What that takes (where ``initdb`` is installed, how to run it when we are root, whether a
URL accepts connections, ``CREATE``/``DROP DATABASE``) is PostgreSQL-specific and independent of
the other services, so it lives here; psycopg2 is imported only when a function needs it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import subprocess
from pathlib import Path

import psycopg2
from psycopg2 import sql

from infra.procs import StackError

PG_BIN_CANDIDATES = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
    "/usr/lib/postgresql/14/bin",
)


def pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    for cand in PG_BIN_CANDIDATES:
        if (Path(cand) / "initdb").exists():
            return Path(cand)
    return None


def run(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise StackError(f"{shlex.join(cmd)} failed:\n{proc.stdout}{proc.stderr}")


def pg_user_prefix(paths: list[Path]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the ``postgres`` user (owning
    ``paths``) through ``runuser``; as anyone else, run it directly."""
    if os.geteuid() != 0:
        return []
    try:
        user = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise StackError(
            "running as root and there is no 'postgres' user to run "
            "PostgreSQL as; run as an ordinary user"
        ) from exc
    runuser = shutil.which("runuser")
    if runuser is None:
        raise StackError("running as root without runuser; run as an ordinary user")
    for path in paths:
        if not path.exists() and path.suffix == ".log":
            path.touch()
        os.chown(path, user.pw_uid, user.pw_gid)
    # the postgres user must be able to reach the stack folder
    for parent in {p.parent for p in paths}:
        _allow_traverse(parent)
    return [runuser, "-u", "postgres", "--"]


def _allow_traverse(path: Path) -> None:
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & 0o001:
            with contextlib.suppress(PermissionError):
                p.chmod(mode | 0o001)


def pg_ready(url: str) -> bool:
    try:
        conn = psycopg2.connect(url, connect_timeout=2)
    except Exception:
        return False
    conn.close()
    return True


def create_database(admin_url: str, name: str) -> bool:
    """Create ``name`` unless it exists; returns whether it was created."""
    conn = psycopg2.connect(admin_url, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return False
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    finally:
        conn.close()


def drop_database(admin_url: str, name: str) -> None:
    conn = psycopg2.connect(admin_url, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        conn.close()
