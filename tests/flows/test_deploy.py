"""Scheduled deployments, defined once in ``prefect.yaml``: ``veracity deploy`` serves what the
file says (fast tests), and on a real Prefect server on 127.0.0.1 ``veracity deploy``'s serve
process registers them, ``prefect deployment run`` triggers one, the serve process executes
it, and the API reports it completed with its artifacts; ``prefect deploy --all`` registers
the same deployments from ``prefect.yaml`` on a process work pool."""

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

import prefect
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from flows.deploy import PREFECT_YAML, deployments
from infra.errors import UserError
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
PREFECT = str(Path(sys.executable).with_name("prefect"))


def yaml_deployments(path: Path = PREFECT_YAML) -> dict[str, dict[str, Any]]:
    """prefect.yaml's deployments, read as `prefect deploy` reads them."""
    return {d["name"]: d for d in yaml.safe_load(path.read_text())["deployments"]}


def yaml_crons(path: Path = PREFECT_YAML) -> dict[str, list[str]]:
    return {name: [s["cron"] for s in d["schedules"]] for name, d in yaml_deployments(path).items()}


def served(deps: list[Any]) -> dict[str, dict[str, Any]]:
    """What a RunnerDeployment will register, in prefect.yaml's terms."""
    return {
        d.name: {
            "description": d.description,
            "entrypoint": d.entrypoint,
            "tags": d.tags,
            "parameters": d.parameters,
            "schedules": [
                {"cron": s.schedule.cron, "timezone": s.schedule.timezone, "active": s.active}
                for s in d.schedules
            ],
        }
        for d in deps
    }


def expected(path: Path = PREFECT_YAML, **params: Any) -> dict[str, dict[str, Any]]:
    keys = ("description", "entrypoint", "tags", "parameters", "schedules")
    out = {name: {k: d[k] for k in keys} for name, d in yaml_deployments(path).items()}
    for d in out.values():
        d["parameters"] = {**d["parameters"], **params}
    return out


def test_veracity_deploy_serves_prefect_yaml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`veracity deploy` with its defaults serves exactly prefect.yaml's deployments."""
    for key in ("PREFECT_HOME", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"):
        monkeypatch.setenv(key, str(tmp_path / "prefect") if key == "PREFECT_HOME" else "120")
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(prefect, "serve", lambda *a, **kw: calls.append((a, kw)))
    result = CliRunner().invoke(app, ["deploy", "--n", "40"])
    assert result.exit_code == 0, result.output
    [(deps, _)] = calls
    assert served(list(deps)) == expected(n=40)
    assert set(yaml_crons()) == {"nightly-refresh", "weekly-retrain"}


def test_a_cron_changed_in_prefect_yaml_changes_the_served_schedule(tmp_path: Path) -> None:
    text = PREFECT_YAML.read_text()
    assert text.count('cron: "0 2 * * *"') == 1
    changed = tmp_path / "prefect.yaml"
    changed.write_text(text.replace('cron: "0 2 * * *"', 'cron: "30 1 * * *"'))
    assert served(deployments(path=changed)) == expected(changed)
    assert yaml_crons(changed)["nightly-refresh"] == ["30 1 * * *"]
    # the command line's --nightly / --weekly still override the file
    over = served(deployments(nightly="0 3 * * *", weekly="0 5 * * 1", path=changed))
    assert {n: [s["cron"] for s in d["schedules"]] for n, d in over.items()} == {
        "nightly-refresh": ["0 3 * * *"],
        "weekly-retrain": ["0 5 * * 1"],
    }


def test_missing_prefect_yaml_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"prefect\.yaml not found") as err:
        deployments(path=tmp_path / "prefect.yaml")
    assert "\n" not in str(err.value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    method = "POST" if body is not None else "GET"
    headers = {"Content-Type": "application/json"}
    req = urllib.request.Request(f"{url}{path}", data=data, method=method, headers=headers)
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
    cmd = [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
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


def run_in(env: dict[str, str], cwd: Path, timeout: float) -> dict[str, Any]:
    """subprocess.run's keywords for a Prefect CLI call: its environment, output captured."""
    return {"env": env, "capture_output": True, "text": True, "timeout": timeout, "cwd": cwd}


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
    code = (
        "from flows.cli.run import prefect_environment; prefect_environment();"
        "from flows.deploy import serve_deployments; serve_deployments(n=40)"
    )
    serve = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=serve_log, stderr=subprocess.STDOUT
    )
    try:

        def listed() -> dict[str, Any]:
            rows = api(url, "/deployments/filter", {})
            return {f"{d['name']}": d for d in rows} if len(rows) >= 2 else {}

        found = wait_for(listed, 240, "served deployments")
        assert set(found) == {"nightly-refresh", "weekly-retrain"}
        rows = {name: api(url, f"/deployments/{d['id']}")["schedules"] for name, d in found.items()}
        crons = {name: [s["schedule"].get("cron") for s in r] for name, r in rows.items()}
        assert crons == yaml_crons()  # `veracity deploy` serves prefect.yaml's schedules

        params = json.dumps({"n": 40, "seed": 11, "domains": ["medical"]})
        trigger = subprocess.run(
            [PREFECT, "deployment", "run", "refresh/nightly-refresh", "--params", params],
            **run_in(env, tmp_path, timeout=120),
        )
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
        **run_in(env, ROOT, timeout=120),
    )
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deploy = subprocess.run(
        [PREFECT, "--no-prompt", "deploy", "--all"], **run_in(env, ROOT, timeout=300)
    )
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
    rows = api(url, "/deployments/filter", {})
    pooled = {d["name"] for d in rows if d.get("work_pool_name") == "veracity-process"}
    assert pooled == {"nightly-refresh", "weekly-retrain"}
