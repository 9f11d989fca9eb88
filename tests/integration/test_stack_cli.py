"""``veracity stack up|status|down`` as a user runs them: with no PostgreSQL on the configured
port the launcher ``initdb``s its own cluster under the home directory; everything binds
127.0.0.1, is healthy after ``up``, and is gone after ``down``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from flows.cli.stack import app as stack_app
from infra.postgres import pg_bindir
from infra.procs import free_port, port_open
from infra.settings import reload_settings
from tests.conftest import unavailable

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
