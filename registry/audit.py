"""Audit store for the promotion gate (SQLAlchemy 2): every decision, and the champion pointer.

Two tables:

``promotion_decisions``
    One row per decision, promoted or not, and per rollback. Append-only, and tamper-evident:
    each row carries ``row_hash``, the SHA-256 of its fields and the hash of the row before it,
    so an edited or deleted decision breaks the chain from there on (``verify_chain``). The
    hash is also tagged on the model version in MLflow, a second store a rewrite of the whole
    chain would have to forge too. Rows written before the chain began carry no hash.
``champion_pointer``
    One row per registered model: the champion version and the previous champion. It is the
    compare-and-set point that makes concurrent promotions safe: a decision is committed only
    inside a transaction that holds this row locked (``SELECT ... FOR UPDATE`` on PostgreSQL,
    ``BEGIN IMMEDIATE`` on SQLite) and still sees the champion the decision was made against.

The database is ``get_settings().db_url`` (SQLite under the home by default, PostgreSQL with
``VERACITY_DATABASE_URL``).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from infra.settings import get_settings, with_driver

WAL_TRIES = 100  # 10 s of switches lost to other processes opening the same new file
WAL_RETRY_S = 0.1

metadata = MetaData()

decisions = Table(
    "promotion_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(32), nullable=False),  # "promote" or "rollback"
    Column("model_name", String(255), nullable=False, index=True),
    Column("challenger_version", Integer, nullable=True),
    Column("champion_version_before", Integer, nullable=True),
    Column("champion_version_after", Integer, nullable=True),
    Column("promoted", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("statistic", JSON, nullable=False),
    Column("policy", JSON, nullable=False),
    Column("row_hash", String(64), nullable=True),  # NULL only on rows from before the chain
)

champion_pointer = Table(
    "champion_pointer",
    metadata,
    Column("model_name", String(255), primary_key=True),
    Column("version", Integer, nullable=True),
    Column("previous_version", Integer, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

_ENGINES: dict[str, Engine] = {}
_SCHEMA_READY: set[str] = set()
_SCHEMA_LOCK_KEY = 0x5EAC17  # advisory lock id for concurrent CREATE TABLE on PostgreSQL
_CHAIN_LOCK_KEY = 0x5EAC18  # advisory lock id: one decision appended at a time on PostgreSQL


def default_actor() -> str:
    """Who decides, when no one is named: the user at this host."""
    user = os.environ.get("USER") or getpass.getuser()
    return f"{user}@{socket.gethostname()}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(at: datetime) -> datetime:
    """A decision time with its zone: SQLite gives it back without one, and it is always UTC."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)


def _use_wal(dbapi_conn: Any, tries: int = WAL_TRIES) -> None:
    """Put the SQLite file in WAL mode (readers never block the gate); it stays set in the file.
    Switching fails at once with "database is locked", busy timeout or not, while another
    process writes or switches it too (several processes opening a new file at once: CI saw
    it), so a switch that loses is retried until the file reads WAL."""
    for attempt in range(tries):
        try:
            if dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == tries - 1:
                raise
            time.sleep(WAL_RETRY_S)


def engine(url: str | None = None) -> Engine:
    """One engine per URL and process; SQLite transactions start with ``BEGIN IMMEDIATE``."""
    url = with_driver(url or get_settings().db_url)
    if url in _ENGINES:
        return _ENGINES[url]
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(eng, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let the "begin" hook below own BEGIN
            _use_wal(dbapi_conn)

        @event.listens_for(eng, "begin")
        def _begin_immediate(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    else:
        eng = create_engine(url, pool_pre_ping=True)
    _ENGINES[url] = eng
    return eng


def ensure_schema(url: str | None = None) -> Engine:
    """Create the tables if missing; safe when several processes start at once."""
    eng = engine(url)
    if eng.url.render_as_string() in _SCHEMA_READY:
        return eng
    with eng.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
        metadata.create_all(conn, checkfirst=True)
        columns = {c["name"] for c in inspect(conn).get_columns(decisions.name)}
        if "row_hash" not in columns:  # an audit table from before the chain: keep its rows
            conn.execute(text(f"ALTER TABLE {decisions.name} ADD COLUMN row_hash VARCHAR(64)"))
    _SCHEMA_READY.add(eng.url.render_as_string())
    return eng


@dataclass(frozen=True)
class Pointer:
    model_name: str
    version: int | None
    previous_version: int | None


@contextmanager
def locked_pointer(
    model_name: str, seed_version: int | None = None, seed_previous: int | None = None
) -> Iterator[tuple[Connection, Pointer]]:
    """A transaction holding the model's champion-pointer row locked until the block ends.

    ``seed_*`` initialise a missing row (the aliases found in MLflow, if any).
    The transaction commits when the block exits normally and rolls back on an exception.
    """
    eng = ensure_schema()
    with eng.begin() as conn:
        ins_fn = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        ins = ins_fn(champion_pointer).values(
            model_name=model_name,
            version=seed_version,
            previous_version=seed_previous,
            updated_at=utcnow(),
        )
        conn.execute(ins.on_conflict_do_nothing(index_elements=["model_name"]))
        row = conn.execute(
            select(champion_pointer.c.version, champion_pointer.c.previous_version)
            .where(champion_pointer.c.model_name == model_name)
            .with_for_update()
        ).one()
        yield conn, Pointer(model_name, row.version, row.previous_version)


def compare_and_set(
    conn: Connection,
    model_name: str,
    expected: int | None,
    new_version: int | None,
    previous_version: int | None,
) -> bool:
    """``UPDATE ... WHERE version = :expected``; True when exactly one row changed."""
    col = champion_pointer.c.version
    cond = col.is_(None) if expected is None else col == expected
    result = conn.execute(
        update(champion_pointer)
        .where(champion_pointer.c.model_name == model_name, cond)
        .values(version=new_version, previous_version=previous_version, updated_at=utcnow())
    )
    return result.rowcount == 1


def row_hash(row: dict[str, Any], previous: str) -> str:
    """SHA-256 over a decision's fields and the previous row's hash.

    The fields are read as the database gives them back: an absent one is NULL, times in UTC to
    the microsecond (SQLite returns them without a zone), JSON through one round trip (keys
    become strings).
    """
    fields = {
        c.name: row.get(c.name) for c in decisions.columns if c.name not in ("id", "row_hash")
    }
    fields["decided_at"] = as_utc(row["decided_at"]).isoformat()
    canonical = json.dumps(json.loads(json.dumps(fields)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{previous}\n{canonical}".encode()).hexdigest()


def insert_decision(conn: Connection, row: dict[str, Any]) -> tuple[int, str]:
    """Append one decision row (inside the caller's transaction); returns its id and hash."""
    if conn.dialect.name == "postgresql":  # SQLite's BEGIN IMMEDIATE already serialises writers
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK_KEY})
    last = conn.execute(select(decisions.c.row_hash).order_by(decisions.c.id.desc()).limit(1))
    values = {"decided_at": utcnow(), **row}
    values["row_hash"] = row_hash(values, last.scalar() or "")
    result = conn.execute(insert(decisions).values(**values).returning(decisions.c.id))
    return int(result.scalar_one()), values["row_hash"]


@dataclass(frozen=True)
class ChainCheck:
    chained: int  # decisions whose hash was checked
    before_chain: int  # decisions written before the chain began (no hash to check)
    head: str | None  # the newest decision's hash
    broken_at: int | None = None  # id of the first decision that does not match
    problem: str = ""


def verify_chain() -> ChainCheck:
    """Recompute every decision's hash in order; the first that differs is where it broke."""
    with ensure_schema().connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(decisions).order_by(decisions.c.id))]
    previous, chained, legacy = "", 0, 0
    for row in rows:
        if row["row_hash"] is None and not chained:
            legacy += 1
            continue
        if row["row_hash"] is None:
            problem = "carries no hash inside the chain (its hash was removed)"
        elif row["row_hash"] != row_hash(row, previous):
            problem = "does not match its hash (altered, or a decision before it deleted)"
        else:
            previous, chained = row["row_hash"], chained + 1
            continue
        return ChainCheck(chained, legacy, previous or None, row["id"], problem)
    return ChainCheck(chained, legacy, previous or None)


def record_decision(row: dict[str, Any]) -> tuple[int, str]:
    """Append one decision row in its own transaction."""
    with ensure_schema().begin() as conn:
        return insert_decision(conn, row)


def read_pointer(model_name: str) -> Pointer | None:
    with ensure_schema().connect() as conn:
        row = conn.execute(
            select(champion_pointer.c.version, champion_pointer.c.previous_version).where(
                champion_pointer.c.model_name == model_name
            )
        ).one_or_none()
    return None if row is None else Pointer(model_name, row.version, row.previous_version)


def list_decisions(
    model_name: str | None = None, limit: int | None = None, conn: Connection | None = None
) -> list[dict[str, Any]]:
    """Decisions, newest first (read in ``conn``'s transaction when given)."""
    query = select(decisions).order_by(decisions.c.id.desc())
    if model_name is not None:
        query = query.where(decisions.c.model_name == model_name)
    if limit is not None:
        query = query.limit(limit)
    if conn is None:
        with ensure_schema().connect() as own:
            rows = [dict(r._mapping) for r in own.execute(query)]
    else:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    return [{**r, "decided_at": as_utc(r["decided_at"])} for r in rows]
