"""Four promotions at once, from four processes: one champion, every decision audited.

Run on SQLite (audit DB and MLflow store are files under the home) and on PostgreSQL (one fresh
database used as both the audit DB and the MLflow backend store).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from infra.settings import get_settings, reload_settings
from registry import MODEL_NAME, audit, recent_decisions, registry_table
from tests.registry.conftest import Registry, make_report

PROCESSES = 4


def _worker(env: dict[str, str], version: int, barrier: Any, results: Any) -> None:
    """One promotion in its own process (forked from a server that imported, never connected)."""
    os.environ.update(env)
    reload_settings()
    from registry import promote
    from registry.client import client

    client().get_registered_model(MODEL_NAME)  # warm up, so the race is in the gate itself
    barrier.wait(timeout=120)
    started = time.perf_counter()
    try:
        d = promote(version, actor=f"proc-{version}")
    except Exception as exc:  # the test reports it, rather than waiting on an empty queue
        results.put({"version": version, "error": f"{type(exc).__name__}: {exc}"})
        raise
    seconds = time.perf_counter() - started
    row = {"version": version, "promoted": d.promoted, "id": d.id, "reason": d.reason}
    results.put({**row, "pid": os.getpid(), "seconds": seconds})


def _race(registry: Registry) -> list[dict[str, Any]]:
    # Each version strictly better than the one before (a superset of its correct answers).
    versions = [
        registry.version(make_report(range(800 + 30 * k), range(950, 990)))
        for k in range(1, PROCESSES + 1)
    ]
    # forkserver: separate processes with fresh connections, but mlflow is imported only once
    # (four concurrent `import mlflow` cost ~20 s on two cores).
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["registry"])
    env = {k: v for k, v in os.environ.items() if k.startswith(("VERACITY_", "MLFLOW_"))}
    barrier, results = ctx.Barrier(PROCESSES + 1), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(env, v, barrier, results)) for v in versions]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)  # all four warmed up: go
    out = [results.get(timeout=120) for _ in procs]
    assert not [r for r in out if "error" in r], out
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len({r["pid"] for r in out} | {os.getpid()}) == PROCESSES + 1
    _check(versions, out)
    return out


def _check(versions: list[int], results: list[dict[str, Any]]) -> None:
    rows = sorted(
        (r for r in recent_decisions(100) if r["action"] == "promote"), key=lambda r: r["id"]
    )
    # Every decision recorded, exactly once per process, and the rows are the ones reported.
    assert sorted(r["challenger_version"] for r in rows) == versions
    assert {r["id"] for r in rows} == {r["id"] for r in results}
    # The promoted decisions form one chain: each was made against the champion it replaced.
    promoted = [r for r in rows if r["promoted"]]
    before = None
    for row in promoted:
        assert row["champion_version_before"] == before, rows
        before = row["challenger_version"]
    for row in rows:
        if not row["promoted"]:
            assert row["champion_version_after"] == row["champion_version_before"] is not None
    # v4 beats every other version, so it ends champion whatever the order.
    uri = get_settings().tracking_uri
    aliases = (
        MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(MODEL_NAME).aliases
    )
    assert int(aliases["champion"]) == versions[-1] == promoted[-1]["challenger_version"]
    if promoted[-1]["champion_version_before"] is None:
        assert "previous-champion" not in aliases
    else:
        assert int(aliases["previous-champion"]) == promoted[-1]["champion_version_before"]
    pointer = audit.read_pointer(MODEL_NAME)
    assert pointer is not None and pointer.version == versions[-1]
    assert sum("champion" in row["aliases"] for row in registry_table()) == 1
    # Appended one at a time: the audit chain holds every decision, unbroken.
    chain = audit.verify_chain()
    assert (chain.broken_at, chain.chained) == (None, len(recent_decisions(100))), chain


def test_concurrent_promotions_sqlite(registry: Registry) -> None:
    results = _race(registry)
    assert any(r["promoted"] for r in results)


def test_concurrent_promotions_postgres(pg_registry: Registry) -> None:
    assert get_settings().db_url.startswith("postgresql")
    results = _race(pg_registry)
    assert any(r["promoted"] for r in results)
    assert audit.engine().dialect.name == "postgresql"


def _append(env: dict[str, str], worker: int, barrier: Any) -> None:
    """Refused decisions written back to back, each in its own transaction, outside any gate."""
    os.environ.update(env)
    reload_settings()
    audit.ensure_schema()
    barrier.wait(timeout=120)
    for k in range(APPENDS):
        row = {"actor": f"proc-{worker}", "action": "promote", "model_name": MODEL_NAME}
        row |= {"challenger_version": k, "promoted": False, "reason": "refused: race"}
        audit.record_decision({**row, "metrics": {}, "statistic": {}, "policy": {}})


APPENDS = 25


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]
)
def test_concurrent_appends_keep_the_audit_chain_whole(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend == "postgres":
        monkeypatch.setenv("VERACITY_DATABASE_URL", request.getfixturevalue("postgres_url"))
        reload_settings()
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["registry"])
    env = {k: v for k, v in os.environ.items() if k.startswith("VERACITY_")}
    barrier = ctx.Barrier(PROCESSES + 1)
    procs = [ctx.Process(target=_append, args=(env, w, barrier)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert audit.engine().dialect.name == backend.replace("postgres", "postgresql")
    chain = audit.verify_chain()
    assert (chain.broken_at, chain.chained) == (None, PROCESSES * APPENDS), chain


def test_a_switch_to_wal_lost_to_another_connection_is_retried(tmp_path: Path) -> None:
    """A new SQLite file opened by several processes at once: switching it to WAL while another
    connection holds the lock fails with "database is locked" whatever the busy timeout (a CI run
    lost a promotion to it); the switch is retried until the file reads WAL."""
    path = tmp_path / "audit.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO t VALUES (1)")
    opener = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        audit._use_wal(opener, tries=1)  # one try, as before: the error CI saw
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    audit._use_wal(opener)
    release.join()
    assert opener.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert opener.execute("SELECT x FROM t").fetchall() == [(1,)]  # nothing lost
