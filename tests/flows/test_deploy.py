"""Scheduled deployments on a real Prefect server on 127.0.0.1: ``veracity deploy``'s serve
process registers them, ``prefect deployment run`` triggers one, the serve process executes
it, and the API reports it completed with its artifacts. ``prefect.yaml`` registers the same
deployments with ``prefect deploy`` on a process work pool."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{url}{path}", data=data, method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


@pytest.fixture
def prefect_server(tmp_path: Path, veracity_home: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = os.environ.copy()
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_API_URL=url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        VERACITY_HOME=str(veracity_home),
        GX_ANALYTICS_ENABLED="false",
        MLFLOW_ENABLE_TELEMETRY="false",
    )
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    deadline = time.time() + 180
    while time.time() < deadline:
        if server.poll() is not None:
            unavailable(f"prefect server exited: {(tmp_path / 'server.log').read_text()[-2000:]}")
        try:
            if api(url, "/health") is True:
                break
        except OSError:
            time.sleep(1)
    else:
        server.kill()
        unavailable("prefect server did not become healthy within 180 s")
    yield url, env
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def wait_for(fn: Any, timeout: float, what: str) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_served_deployment_runs_on_a_real_server(
    prefect_server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url, env = prefect_server
    serve_log = open(tmp_path / "serve.log", "w")  # noqa: SIM115
    serve = subprocess.Popen(
        [sys.executable, "-c",
         "from flows.run_cmd import prefect_environment; prefect_environment();"
         "from flows.deploy import serve_deployments; serve_deployments(n=40)"],
        cwd=ROOT, env=env, stdout=serve_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def deployments() -> dict[str, Any]:
            rows = api(url, "/deployments/filter", {})
            return {f"{d['name']}": d for d in rows} if len(rows) >= 2 else {}

        found = wait_for(deployments, 240, "served deployments")
        assert set(found) == {"nightly-refresh", "weekly-retrain"}
        crons = {
            name: [s["schedule"].get("cron") for s in api(url, f"/deployments/{d['id']}")["schedules"]]
            for name, d in found.items()
        }  # fmt: skip
        assert crons == {"nightly-refresh": ["0 2 * * *"], "weekly-retrain": ["0 4 * * 0"]}

        params = json.dumps({"n": 40, "seed": 11, "domains": ["medical"]})
        trigger = subprocess.run(
            [PREFECT, "deployment", "run", "refresh/nightly-refresh", "--params", params],
            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
        assert trigger.returncode == 0, trigger.stdout + trigger.stderr
        match = re.search(r"UUID\W*([0-9a-f]{8}-[0-9a-f-]{27})", trigger.stdout)
        assert match, trigger.stdout
        run_id = match.group(1)

        def finished() -> dict[str, Any] | None:
            run = api(url, f"/flow_runs/{run_id}")
            return run if run["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED") else None

        run = wait_for(finished, 420, "the triggered flow run")
        assert run["state"]["type"] == "COMPLETED", (tmp_path / "serve.log").read_text()[-4000:]
        arts = api(
            url, "/artifacts/filter", {"artifacts": {"key": {"any_": ["veracity-validation"]}}}
        )
        assert arts and "Validation: accepted" in arts[0]["data"]
        assert (
            Path(env["VERACITY_HOME"]) / "datasets" / "ds-seed11-n40-medical" / "validation.json"
        ).exists()
    finally:
        serve.terminate()
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
        serve_log.close()

    # prefect.yaml: the same deployments through `prefect deploy` on a process work pool.
    pool = subprocess.run(
        [PREFECT, "work-pool", "create", "veracity-process", "--type", "process"],
        env=env, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deploy = subprocess.run(
        [PREFECT, "--no-prompt", "deploy", "--all"],
        env=env, capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    rows = api(url, "/deployments/filter", {})
    pooled = {d["name"] for d in rows if d.get("work_pool_name") == "veracity-process"}
    assert pooled == {"nightly-refresh", "weekly-retrain"}
