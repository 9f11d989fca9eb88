"""Clean stops: SIGTERM ends `run`, `deploy` and `ui` with every process they started.

Each command runs as a person would start it (its own process); the test waits until it is
doing its work, sends SIGTERM and requires the whole tree gone within 10 s (the bound the
product promises; the watchdog in ``flows.cli.stops`` enforces it at 6 s). A stopped pipeline
leaves its Prefect flow runs marked crashed, not running.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from infra.procs import free_port, port_open
from tests.conftest import pipeline_env

pytestmark = pytest.mark.slow
STOP_S = 10.0


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from flows.cli import app; app()", *args]
    return subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def _wait_for(condition: object, proc: subprocess.Popen[bytes], log: Path, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"never got going: {log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes], log: Path) -> int:
    """SIGTERM; the command and all it started must be gone within STOP_S."""
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"still running {STOP_S} s after SIGTERM: {log.read_text()[-3000:]}")
    _, alive = psutil.wait_procs(tree, timeout=2)
    assert not alive, f"left running: {[p.pid for p in alive]}"
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    return code


def test_ui_stops_with_its_server(tmp_path: Path) -> None:
    env = pipeline_env(tmp_path / "home", tmp_path / "prefect")
    port, log = free_port(), tmp_path / "ui.log"
    proc = _start(["ui", "--port", str(port)], env, log)
    _wait_for(lambda: port_open("127.0.0.1", port), proc, log, 120)
    assert _stop(proc, log) == 128 + signal.SIGTERM
    assert not port_open("127.0.0.1", port)


def test_deploy_stops(tmp_path: Path) -> None:
    env = pipeline_env(tmp_path / "home", tmp_path / "prefect")
    log = tmp_path / "deploy.log"
    proc = _start(["deploy", "--n", "40"], env, log)
    _wait_for(lambda: "being served" in log.read_text(), proc, log, 180)
    assert _stop(proc, log) in (0, 128 + signal.SIGTERM)  # Prefect's runner stops gracefully


def test_a_stopped_run_marks_its_flow_runs_crashed(tmp_path: Path) -> None:
    prefect_home = tmp_path / "prefect"
    env = pipeline_env(tmp_path / "home", prefect_home)
    log = tmp_path / "run.log"
    proc = _start(["run", "--n", "60", "--tiny", "--steps", "2000"], env, log)
    _wait_for(lambda: "for flow 'train'" in log.read_text(), proc, log, 300)
    time.sleep(3)  # inside training
    assert _stop(proc, log) == 128 + signal.SIGTERM
    with sqlite3.connect(prefect_home / "prefect.db") as db:
        states = dict(
            db.execute(
                "SELECT f.name, r.state_type FROM flow_run r JOIN flow f ON f.id = r.flow_id"
            )
        )
    assert states["train"] == "CRASHED" and states["pipeline"] == "CRASHED", states
