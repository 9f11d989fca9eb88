"""Audit store for the promotion gate (SQLAlchemy 2): every decision, and the champion pointer.

Two tables:

``promotion_decisions``
    One row per decision, promoted or not, and per rollback. Append-only.
``champion_pointer``
    One row per registered model: the champion version and the previous champion. It is the
    compare-and-set point that makes concurrent promotions safe: a decision is committed only
    inside a transaction that holds this row locked (``SELECT ... FOR UPDATE`` on PostgreSQL,
    ``BEGIN IMMEDIATE`` on SQLite) and still sees the champion the decision was made against.

The database is ``get_settings().db_url`` (SQLite under the home by default, PostgreSQL with
``VERACITY_DATABASE_URL``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
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
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from infra.settings import get_settings, with_driver

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


def utcnow() -> datetime:
    return datetime.now(UTC)


def engine(url: str | None = None) -> Engine:
    """One engine per URL and process; SQLite transactions start with ``BEGIN IMMEDIATE``."""
    url = with_driver(url or get_settings().db_url)
    if url in _ENGINES:
        return _ENGINES[url]
    if url.startswith("sqlite"):
        from pathlib import Path

        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, connect_args={"timeout": 60})

        @event.listens_for(eng, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let the "begin" hook below own BEGIN
            dbapi_conn.execute("PRAGMA journal_mode=WAL")  # readers never block the gate

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


def insert_decision(conn: Connection, row: dict[str, Any]) -> int:
    """Append one decision row (inside the caller's transaction); returns its id."""
    values = {"decided_at": utcnow(), **row}
    result = conn.execute(insert(decisions).values(**values).returning(decisions.c.id))
    return int(result.scalar_one())


def record_decision(row: dict[str, Any]) -> int:
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


def list_decisions(model_name: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Decisions, newest first."""
    query = select(decisions).order_by(decisions.c.id.desc())
    if model_name is not None:
        query = query.where(decisions.c.model_name == model_name)
    if limit is not None:
        query = query.limit(limit)
    with ensure_schema().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
