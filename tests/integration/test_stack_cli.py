"""``veracity stack up|status|down`` as a user runs them: with no PostgreSQL on the configured
port the launcher ``initdb``s its own cluster under the home directory; everything binds
127.0.0.1, is healthy after ``up``, and is gone after ``down``."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from flows.cli.stack import app as stack_app
from infra.postgres import pg_bindir
from infra.procs import free_port, port_open
from infra.settings import reload_settings
from tests.conftest import unavailable
from tests.stopping import start, stop, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.services]


def app() -> typer.Typer:
    return stack_app


def test_stack_up_status_down_with_its_own_postgres(
    veracity_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if pg_bindir() is None:
        unavailable("initdb/pg_ctl are not installed")
    ports = {name: free_port() for name in ("POSTGRES", "S3", "MLFLOW", "PREFECT")}
    for name, port in ports.items():
        monkeypatch.setenv(f"VERACITY_STACK__{name}_PORT", str(port))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "cli-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cli-test-secret")
    reload_settings()
    runner, cli = CliRunner(), app()
    try:
        up = runner.invoke(cli, ["up", "--no-ui", "--timeout", "240"])
        assert up.exit_code == 0, up.output
        assert (
            f"export VERACITY_MLFLOW_TRACKING_URI=http://127.0.0.1:{ports['MLFLOW']}" in up.output
        )
        assert "cli-test-secret" not in up.output
        root = veracity_home / "stack"
        assert (root / "pgdata" / "PG_VERSION").exists()  # its own cluster
        env = (root / "env").read_text()
        assert "VERACITY_PROFILE=server" in env and "cli-test-secret" not in env

        status = runner.invoke(cli, ["status", "--json"])
        assert status.exit_code == 0, status.output
        info = json.loads(status.output)
        assert all(s["healthy"] and s["managed"] for s in info.values()), info
        assert all("127.0.0.1" in s["url"] for s in info.values())
    finally:
        down = runner.invoke(cli, ["down"])
    assert down.exit_code == 0 and "postgres" in down.output, down.output
    assert not any(port_open("127.0.0.1", p) for p in ports.values())
    after = runner.invoke(cli, ["status"])
    assert after.exit_code == 1 and "DOWN" in after.output


def test_a_stack_stopped_while_starting_leaves_nothing_running(
    veracity_home: Path, tmp_path: Path
) -> None:
    """SIGTERM half-way through `stack up` (PostgreSQL and S3 up, the servers starting) brings
    down what it started within 10 s, its own PostgreSQL cluster included, and exits 143."""
    if pg_bindir() is None:
        unavailable("initdb/pg_ctl are not installed")
    ports = {name: free_port() for name in ("POSTGRES", "S3", "MLFLOW", "PREFECT")}
    env = {**os.environ, **{f"VERACITY_STACK__{n}_PORT": str(p) for n, p in ports.items()}}
    env.update(AWS_ACCESS_KEY_ID="cli-test", AWS_SECRET_ACCESS_KEY="cli-test-secret")
    state, log = veracity_home / "stack" / "state.json", tmp_path / "up.log"
    proc = start(["stack", "up", "--no-ui", "--timeout", "240"], env, log)

    def servers_starting() -> bool:
        return state.exists() and "prefect" in json.loads(state.read_text())["services"]

    wait_for(servers_starting, proc, log, 240)
    assert stop(proc, log) == 128 + signal.SIGTERM
    assert not any(port_open("127.0.0.1", p) for p in ports.values()), log.read_text()
    assert not (veracity_home / "stack" / "pgdata" / "postmaster.pid").exists()
