"""Starting a ``veracity`` command as a person would (its own process) and stopping it with
SIGTERM: the command and every process it started must be gone within :data:`STOP_S`, the
bound the product promises (the watchdog in ``flows.cli.stops`` enforces it at 6 s)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

STOP_S = 10.0


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from flows.cli import app; app()", *args]
    return subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def wait_for(
    condition: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, within: float
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.5)
    proc.kill()
    pytest.fail(f"never got going: {log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes], log: Path) -> int:
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
