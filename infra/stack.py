"""The server-profile service stack as local processes (where there is no docker engine).

``Stack(StackConfig.from_settings()).up()`` starts, on ``127.0.0.1`` (``VERACITY_STACK__HOST``)
and the ports from settings:

* PostgreSQL: an existing server (``postgres_admin_url``, or one answering on
  ``host:postgres_port``), else a cluster ``initdb``-ed into ``<home>/stack/pgdata`` and run
  with ``pg_ctl``. Three databases: MLflow, Prefect, the audit table.
* S3: moto's server (the compose file uses MinIO), with the bucket created.
* ``mlflow server`` on PostgreSQL, serving artifacts from ``s3://<bucket>/mlartifacts``.
* ``prefect server start`` on PostgreSQL (asyncpg), with its own ``PREFECT_HOME``.

Each service is health-checked before ``up`` returns; logs go to ``<home>/stack/logs``, the
process ids to ``<home>/stack/state.json`` (so ``down`` and ``status`` work from another
process) and the server-profile environment to ``<home>/stack/env`` (``source`` it).
Credentials are never written anywhere: S3 keys come from the AWS environment or profile and
are inherited by the child processes; PostgreSQL URLs carry no password (use ``PGPASSWORD`` or
``~/.pgpass``). PostgreSQL helpers live in ``infra.postgres``; process and port helpers (and
``StackError``) in ``infra.procs``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3

from infra.postgres import create_database, pg_bindir, pg_ready, pg_user_prefix, run
from infra.procs import StackError, alive, http_ok, port_open, tail, terminate_group
from infra.redact import redact
from infra.settings import Settings, get_settings
from infra.storage import ensure_bucket

SERVICES = ("postgres", "s3", "mlflow", "prefect")


def _with_db(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@dataclass
class StackConfig:
    """Everything the launcher needs; ``from_settings`` fills it from ``VERACITY_*``."""

    root: Path  # <home>/stack: logs, state, PREFECT_HOME, pgdata
    host: str = "127.0.0.1"
    postgres_port: int = 5432
    s3_port: int = 9000
    mlflow_port: int = 5000
    prefect_port: int = 4200
    bucket: str = "veracity"
    postgres_admin_url: str | None = None
    database_prefix: str = "veracity"
    mlflow_workers: int = 1
    prefect_ui: bool = True
    # Where the MLflow server reaches S3 (default: the stack's own S3); tests point it at a
    # fault-injecting proxy.
    mlflow_s3_endpoint: str | None = None
    startup_timeout_s: float = 180.0
    extra_env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> StackConfig:
        s = settings or get_settings()
        st = s.stack
        values: dict[str, Any] = {
            "root": (s.home / "stack").resolve(),
            "host": st.host,
            "postgres_port": st.postgres_port,
            "s3_port": st.s3_port,
            "mlflow_port": st.mlflow_port,
            "prefect_port": st.prefect_port,
            "bucket": st.bucket,
            "postgres_admin_url": st.postgres_admin_url,
            "database_prefix": st.database_prefix,
        }
        values.update(overrides)
        return cls(**values)

    # ---- endpoints
    @property
    def admin_url(self) -> str:
        return self.postgres_admin_url or (
            f"postgresql://postgres@{self.host}:{self.postgres_port}/postgres"
        )

    def database(self, purpose: str) -> str:
        return f"{self.database_prefix}_{purpose}"

    def database_url(self, purpose: str, driver: str = "postgresql") -> str:
        url = _with_db(self.admin_url, self.database(purpose))
        return url.replace("postgresql://", f"{driver}://", 1)

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    @property
    def prefect_api_url(self) -> str:
        return f"http://{self.host}:{self.prefect_port}/api"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def profile_env(self) -> dict[str, str]:
        """The server profile pointing at this stack (no credentials in it)."""
        return {
            "VERACITY_PROFILE": "server",
            "VERACITY_DATABASE_URL": self.database_url("audit"),
            "VERACITY_MLFLOW_TRACKING_URI": self.mlflow_url,
            "VERACITY_PREFECT_API_URL": self.prefect_api_url,
            "VERACITY_DATA_ROOT": f"s3://{self.bucket}/datasets",
            "VERACITY_S3__ENDPOINT_URL": self.s3_endpoint,
            "PREFECT_API_URL": self.prefect_api_url,
            "MLFLOW_TRACKING_URI": self.mlflow_url,
        }


@dataclass
class ServiceState:
    name: str
    pid: int | None
    url: str
    log: str
    managed: bool  # started by us (``down`` stops it) or found running


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.state: dict[str, ServiceState] = {}

    # ------------------------------------------------------------------ plumbing
    @property
    def state_file(self) -> Path:
        return self.config.root / "state.json"

    def _save(self) -> None:
        config = {k: v for k, v in asdict(self.config).items() if k != "extra_env"}
        data = {
            "config": _jsonable(config),
            "services": {k: asdict(v) for k, v in self.state.items()},
        }
        self.state_file.write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, root: Path) -> Stack:
        """The stack a previous ``up`` left in ``root`` (for ``down``/``status``)."""
        data = json.loads((root / "state.json").read_text())
        cfg = dict(data["config"])
        cfg["root"] = Path(cfg["root"])
        stack = cls(StackConfig(**cfg))
        stack.state = {k: ServiceState(**v) for k, v in data["services"].items()}
        return stack

    def child_env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, **self.config.extra_env, **extra}
        # Children never inherit a profile pointing elsewhere.
        for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI"):
            env.pop(key, None)
        env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        env.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
        env.setdefault("DO_NOT_TRACK", "1")
        return env

    def _spawn(self, name: str, cmd: list[str], env: dict[str, str], url: str) -> None:
        log = self.config.logs / f"{name}.log"
        with open(log, "ab") as fh:
            fh.write(f"\n--- {time.strftime('%F %T')} {shlex.join(cmd)}\n".encode())
            fh.flush()
            proc = subprocess.Popen(
                cmd,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.config.root,
                start_new_session=True,
            )
        self.state[name] = ServiceState(name, proc.pid, url, str(log), managed=True)
        self._save()

    def _wait(self, name: str, healthy: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.config.startup_timeout_s
        st = self.state[name]
        while time.monotonic() < deadline:
            if healthy():
                return
            if st.managed and st.pid is not None and not alive(st.pid):
                raise StackError(f"{name} exited during start-up; see {st.log}:\n{tail(st.log)}")
            time.sleep(0.5)
        raise StackError(
            f"{name} not healthy after {self.config.startup_timeout_s:.0f} s; "
            f"see {st.log}:\n{tail(st.log)}"
        )

    # ------------------------------------------------------------------ services
    def _postgres(self) -> None:
        c = self.config
        admin = c.admin_url
        parts = urlsplit(admin)
        host, port = parts.hostname or c.host, parts.port or 5432
        log = str(c.logs / "postgres.log")
        if c.postgres_admin_url or pg_ready(admin):
            self.state["postgres"] = ServiceState("postgres", None, redact(admin), log, False)
        else:
            bindir = pg_bindir()
            if bindir is None:
                raise StackError(
                    f"no PostgreSQL answers on {host}:{port} and initdb is not "
                    "installed; set VERACITY_STACK__POSTGRES_ADMIN_URL"
                )
            data = c.root / "pgdata"
            sockets = c.root / "pgsock"
            sockets.mkdir(exist_ok=True)
            data.mkdir(mode=0o700, exist_ok=True)
            as_user = pg_user_prefix([data, sockets, Path(log)])
            if not (data / "PG_VERSION").exists():
                initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres"]
                run([*as_user, *initdb, "-A", "trust", "-E", "UTF8", "--no-instructions"])
            opts = f"-p {port} -c listen_addresses={host} -k {sockets}"
            pg_ctl = [str(bindir / "pg_ctl"), "-D", str(data), "-l", log, "-o", opts]
            run([*as_user, *pg_ctl, "-w", "-t", str(int(c.startup_timeout_s)), "start"])
            pid = int((data / "postmaster.pid").read_text().split()[0])
            self.state["postgres"] = ServiceState("postgres", pid, redact(admin), log, True)
        self._save()
        self._wait("postgres", lambda: pg_ready(admin))
        for purpose in ("mlflow", "prefect", "audit"):
            create_database(admin, c.database(purpose))

    def _s3(self) -> None:
        c = self.config
        cmd = [sys.executable, "-m", "moto.server", "-H", c.host, "-p", str(c.s3_port)]
        self._spawn("s3", cmd, self.child_env(), c.s3_endpoint)

    def _mlflow(self) -> None:
        c = self.config
        env = self.child_env(
            MLFLOW_S3_ENDPOINT_URL=c.mlflow_s3_endpoint or c.s3_endpoint,
            MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
            # botocore's own retries for the server's S3 traffic (not hand-written loops).
            AWS_RETRY_MODE="standard",
            AWS_MAX_ATTEMPTS=os.environ.get("AWS_MAX_ATTEMPTS", "10"),
        )
        cmd = [sys.executable, "-m", "mlflow", "server"]
        cmd += ["--host", c.host, "--port", str(c.mlflow_port), "--workers", str(c.mlflow_workers)]
        cmd += ["--backend-store-uri", c.database_url("mlflow", "postgresql+psycopg2")]
        cmd += ["--artifacts-destination", f"s3://{c.bucket}/mlartifacts", "--serve-artifacts"]
        self._spawn("mlflow", cmd, env, c.mlflow_url)

    def _prefect(self) -> None:
        c = self.config
        home = c.root / "prefect"
        home.mkdir(parents=True, exist_ok=True)
        env = self.child_env(
            PREFECT_HOME=str(home),
            PREFECT_API_DATABASE_CONNECTION_URL=c.database_url("prefect", "postgresql+asyncpg"),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_API_HOST=c.host,
            PREFECT_SERVER_API_PORT=str(c.prefect_port),
            PREFECT_UI_API_URL=c.prefect_api_url,
        )
        cmd = [sys.executable, "-m", "prefect", "server", "start"]
        cmd += ["--host", c.host, "--port", str(c.prefect_port)]
        cmd += ["--ui" if c.prefect_ui else "--no-ui"]
        self._spawn("prefect", cmd, env, c.prefect_api_url)

    # ------------------------------------------------------------------ public API
    def up(self) -> dict[str, str]:
        """Start every service (or find it running) and wait until all are healthy; returns the
        server-profile environment, also written to ``<root>/env``."""
        c = self.config
        c.logs.mkdir(parents=True, exist_ok=True)
        check_credentials()
        ports = {"s3": c.s3_port, "mlflow": c.mlflow_port, "prefect": c.prefect_port}
        for name, port in ports.items():
            if port_open(c.host, port):
                raise StackError(
                    f"port {c.host}:{port} for {name} is taken; is a stack already "
                    "up? (veracity stack status / down)"
                )
        try:
            self._postgres()
            self._s3()
            self._wait("s3", lambda: port_open(c.host, c.s3_port))
            ensure_bucket(c.s3_endpoint, c.bucket)
            self._mlflow()  # the two servers migrate their databases concurrently
            self._prefect()
            self._wait("mlflow", lambda: http_ok(f"{c.mlflow_url}/health"))
            self._wait("prefect", lambda: http_ok(f"{c.prefect_api_url}/health"))
        except BaseException:
            self.down()
            raise
        env = c.profile_env()
        (c.root / "env").write_text(
            "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
        )
        return env

    def down(self, timeout: float = 20.0) -> list[str]:
        """Stop what ``up`` started (reverse order); returns the names stopped."""
        stopped = []
        for name in reversed(SERVICES):
            st = self.state.get(name)
            if st is None or not st.managed or st.pid is None:
                continue
            if name == "postgres":
                bindir = pg_bindir()
                if bindir is not None:
                    data = self.config.root / "pgdata"
                    pg_ctl = [*pg_user_prefix([]), str(bindir / "pg_ctl"), "-D", str(data)]
                    subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True)
            else:
                terminate_group(st.pid, timeout)
            stopped.append(name)
        self.state = {}
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        return stopped

    def status(self) -> dict[str, dict[str, Any]]:
        c = self.config
        checks: dict[str, Callable[[], bool]] = {
            "postgres": lambda: pg_ready(c.admin_url),
            "s3": lambda: port_open(c.host, c.s3_port),
            "mlflow": lambda: http_ok(f"{c.mlflow_url}/health"),
            "prefect": lambda: http_ok(f"{c.prefect_api_url}/health"),
        }
        urls = {
            "postgres": redact(c.admin_url),
            "s3": c.s3_endpoint,
            "mlflow": c.mlflow_url,
            "prefect": c.prefect_api_url,
        }
        out: dict[str, dict[str, Any]] = {}
        for name in SERVICES:
            st = self.state.get(name)
            out[name] = {
                "healthy": checks[name](),
                "url": st.url if st else urls[name],
                "pid": st.pid if st else None,
                "running": bool(st and st.pid and alive(st.pid)),
                "managed": bool(st and st.managed),
                "log": st.log if st else None,
            }
        return out


# ---------------------------------------------------------------------------- helpers


def check_credentials() -> None:
    """S3 credentials must come from the environment or an AWS profile (never from settings)."""
    if boto3.Session().get_credentials() is None:
        raise StackError(
            "no AWS credentials: export AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) before stack up"
        )


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in data.items()}


def default_root() -> Path:
    return StackConfig.from_settings().root


__all__ = ["Stack", "StackConfig"]
