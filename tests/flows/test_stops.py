"""Clean stops: SIGTERM ends `run`, `deploy` and `ui` with every process they started.

Each command runs as a person would start it (``tests.stopping``); the test waits until it is
doing its work, sends SIGTERM and requires the whole tree gone within 10 s. A stopped pipeline
leaves its Prefect flow runs marked crashed, not running. `serve` is stopped in
tests/registry/test_serve.py (it needs a champion), `stack up` in
tests/integration/test_stack_cli.py.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import pytest

from infra.procs import free_port, port_open
from tests.conftest import pipeline_env
from tests.stopping import start, stop, wait_for

pytestmark = pytest.mark.slow


def test_ui_stops_with_its_server(tmp_path: Path) -> None:
    env = pipeline_env(tmp_path / "home", tmp_path / "prefect")
    port, log = free_port(), tmp_path / "ui.log"
    proc = start(["ui", "--port", str(port)], env, log)
    wait_for(lambda: port_open("127.0.0.1", port), proc, log, 120)
    assert stop(proc, log) == 128 + signal.SIGTERM
    assert not port_open("127.0.0.1", port)


def test_deploy_stops(tmp_path: Path) -> None:
    env = pipeline_env(tmp_path / "home", tmp_path / "prefect")
    log = tmp_path / "deploy.log"
    proc = start(["deploy", "--n", "40"], env, log)
    wait_for(lambda: "being served" in log.read_text(), proc, log, 180)
    assert stop(proc, log) in (0, 128 + signal.SIGTERM)  # Prefect's runner stops gracefully


def test_a_stopped_run_marks_its_flow_runs_crashed(tmp_path: Path) -> None:
    prefect_home = tmp_path / "prefect"
    env = pipeline_env(tmp_path / "home", prefect_home)
    log = tmp_path / "run.log"
    proc = start(["run", "--n", "60", "--tiny", "--steps", "2000"], env, log)
    wait_for(lambda: "for flow 'train'" in log.read_text(), proc, log, 300)
    time.sleep(3)  # inside training
    assert stop(proc, log) == 128 + signal.SIGTERM
    with sqlite3.connect(prefect_home / "prefect.db") as db:
        states = dict(
            db.execute(
                "SELECT f.name, r.state_type FROM flow_run r JOIN flow f ON f.id = r.flow_id"
            )
        )
    assert states["train"] == "CRASHED" and states["pipeline"] == "CRASHED", states
