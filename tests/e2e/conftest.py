"""The end-to-end fixtures: one finished pipeline run (tiny model, one domain) in a subprocess
with its own ``PREFECT_HOME`` and Prefect's temporary server, its Prefect artifacts, Debian's
chromium driven by Playwright, and ``veracity ui`` over the run's MLflow store."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from models.sizes import TINY_MODEL
from tests.conftest import pipeline_env, unavailable

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("VERACITY_CHROMIUM", "/usr/bin/chromium")  # Debian's package
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARGS: dict[str, Any] = {
    "domains": ["medical"],
    "n": 100,
    "seed": 11,
    "train_params": {
        "max_steps": 10,
        "batch_size": 8,
        "checkpoint_every": 10,
        "val_check_interval": 10,
        "model": dict(TINY_MODEL),
    },
}
# Floors nobody fails: the gate still runs (validation status, audit row, alias move).
PROMOTE = r"""
import json, sys
from dataclasses import asdict
from registry import PromotionPolicy, promote
policy = PromotionPolicy(min_accuracy=0.0, max_hallucination=1.0, latency_p95_budget_ms=1e9)
decision = promote(int(sys.argv[1]), policy, actor="e2e-test")
print("DECISION=" + json.dumps(asdict(decision), default=str))
"""
ARTIFACTS = r"""
import asyncio, json
from prefect.client.orchestration import get_client

async def main():
    async with get_client() as client:
        arts = await client.read_artifacts()
    rows = [{"key": a.key, "type": a.type, "data": a.data, "description": a.description,
             "flow_run_id": str(a.flow_run_id)} for a in arts]
    print("ARTIFACTS=" + json.dumps(rows, default=str))

asyncio.run(main())
"""


@dataclass
class FinishedRun:
    root: Path
    env: dict[str, str]
    result: dict[str, Any]
    version: int
    decision: dict[str, Any]
    experiment_id: str
    run_id: str
    parent_run_id: str
    pipeline_s: float


def _python(code_or_module: list[str], env: dict[str, str], timeout: float) -> str:
    proc = subprocess.run(
        [sys.executable, *code_or_module],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def _marked(out: str, marker: str) -> Any:
    line = next(ln for ln in out.splitlines() if ln.startswith(marker))
    return json.loads(line[len(marker) :])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    root = tmp_path_factory.mktemp("e2e")
    env = pipeline_env(root / "home", root / "prefect")
    start = time.perf_counter()
    _python(["-m", "flows.pipeline", json.dumps(ARGS), str(root / "result.json")], env, 420)
    pipeline_s = time.perf_counter() - start
    result = json.loads((root / "result.json").read_text())
    refused = result["promotion"]["decision"]
    # The default floors (0.80 accuracy, 0.10 hallucination) refuse a 10-step tiny model.
    assert refused["action"] == "promote" and not refused["promoted"], refused
    version = int(result["promotion"]["version"])
    decision = _marked(_python(["-c", PROMOTE, str(version)], env, 180), "DECISION=")
    assert decision["promoted"], decision
    assert decision["champion_version_after"] == version
    url = result["mlflow_run_url"]
    match = re.search(r"#/experiments/([^/]+)/runs/([0-9a-f]+)$", url)
    assert match, url
    return FinishedRun(
        root=root,
        env=env,
        result=result,
        version=version,
        decision=decision,
        experiment_id=match.group(1),
        run_id=match.group(2),
        parent_run_id=str(result["mlflow_parent_run"]),
        pipeline_s=pipeline_s,
    )


@pytest.fixture(scope="module")
def prefect_artifacts(finished_run: FinishedRun) -> dict[str, dict[str, Any]]:
    """The run's Prefect artifacts, read through the Prefect client (latest per key)."""
    rows = _marked(_python(["-c", ARTIFACTS], finished_run.env, 240), "ARTIFACTS=")
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:  # one pipeline run: each key appears once, but keep the last anyway
        if row["key"]:
            latest[row["key"]] = row
    return latest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's chromium, driven by Playwright (never a downloaded browser)."""
    if not (Path(CHROMIUM).exists() and shutil.which(CHROMIUM)):
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(f"playwright is not installed (the dev extra): {exc}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def mlflow_ui(finished_run: FinishedRun) -> Iterator[str]:
    """``veracity ui`` over the run's store, on a free port of 127.0.0.1."""
    port = free_port()
    log = (finished_run.root / "ui.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from flows.cli import app; app()", "ui", "--port", str(port)],
        cwd=ROOT,
        env=finished_run.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # mlflow ui starts uvicorn workers: stop the whole group
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            assert proc.poll() is None, (finished_run.root / "ui.log").read_text()[-3000:]
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{base}/health", timeout=5) as r,
            ):
                if r.status == 200:
                    break
            assert time.time() < deadline, "the MLflow UI did not answer within 180 s"
            time.sleep(1)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        log.close()
