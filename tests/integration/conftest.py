"""The server-profile stack for integration tests: PostgreSQL (fresh databases), moto's S3
server behind a fault-injecting proxy, ``mlflow server`` and ``prefect server``, all on free
ports on 127.0.0.1, started once per session by ``infra.stack`` and stopped in teardown.

The S3 secret key is a unique marker so the tests can prove it never leaks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unavailable
from tests.integration.faulty_s3 import FaultyS3

ROOT = Path(__file__).resolve().parents[2]
SECRET = f"vsecret-{uuid.uuid4().hex}"
ACCESS_KEY = "veracity-it"


@dataclass
class Services:
    stack: Any  # infra.stack.Stack
    proxy: FaultyS3
    root: Path

    @property
    def config(self) -> Any:
        return self.stack.config

    def env(self, home: Path, *, faulty: bool = True, **extra: str) -> dict[str, str]:
        """A child-process environment on the server profile (S3 through the proxy)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
        env.update(self.config.profile_env())
        env.update(
            VERACITY_HOME=str(home),
            VERACITY_S3__ENDPOINT_URL=self.proxy.url if faulty else self.config.s3_endpoint,
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET,
            AWS_DEFAULT_REGION="us-east-1",
            PREFECT_HOME=str(home / "prefect-client"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            GX_ANALYTICS_ENABLED="false",
            MLFLOW_ENABLE_TELEMETRY="false",
            PYTHONPATH=str(ROOT),
        )
        env.pop("VERACITY_CONFIG", None)
        env.update(extra)
        return env


def run_python(code: str, env: dict[str, str], log: Path, timeout: float = 600) -> str:
    """Run ``code`` in a fresh interpreter; its output is kept in ``log`` (scanned later)."""
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        fh.write(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


def api(url: str, body: dict[str, Any] | None = None, method: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url,
        data=data,
        method=method or ("POST" if data else "GET"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    from infra.postgres import drop_database, pg_bindir, pg_ready
    from infra.procs import StackError, free_port
    from infra.stack import Stack, StackConfig

    root = tmp_path_factory.mktemp("stack")
    prefix = f"vit_{uuid.uuid4().hex[:8]}"
    admin = os.environ.get(
        "VERACITY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    use_existing = pg_ready(admin)
    if not use_existing and pg_bindir() is None:
        unavailable(f"no PostgreSQL at {admin} and no initdb to start one")
    s3_port = free_port()
    proxy = FaultyS3(f"http://127.0.0.1:{s3_port}", rate=0.2, seed=7).start()
    config = StackConfig(
        root=root,
        s3_port=s3_port,
        mlflow_port=free_port(),
        prefect_port=free_port(),
        postgres_port=5432 if use_existing else free_port(),
        postgres_admin_url=admin if use_existing else None,
        database_prefix=prefix,
        bucket=f"veracity-{uuid.uuid4().hex[:8]}",
        prefect_ui=False,
        mlflow_s3_endpoint=proxy.url,
        extra_env={
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1",
        },
    )
    stack = Stack(config)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in config.extra_env.items():
            mp.setenv(k, v)
        try:
            stack.up()
        except StackError as exc:
            proxy.stop()
            unavailable(f"the service stack did not start: {exc}")
        try:
            yield Services(stack, proxy, root)
        finally:
            stack.down()
            proxy.stop()
            if use_existing:
                for purpose in ("mlflow", "prefect", "audit"):
                    drop_database(admin, config.database(purpose))
