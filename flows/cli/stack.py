"""``veracity stack up|down|status``: the server-profile services as local processes.

Where a docker engine is available, ``docker compose -f infra/docker-compose.yml up -d`` runs
the same stack in containers (MinIO instead of moto, plus a Prefect worker).
Exit codes: 0 done / all healthy; 1 a service failed to start or is unhealthy; 2 bad input.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from flows.cli.common import command, say
from flows.cli.stops import stoppable
from infra.errors import ExitCode, UserError
from infra.stack import Stack, StackConfig, default_root

app = typer.Typer(help="PostgreSQL, S3, MLflow and Prefect servers for the server profile.")


@app.command()
@command
def up(
    timeout: Annotated[float, typer.Option(help="seconds to wait for each service")] = 180.0,
    ui: Annotated[bool, typer.Option(help="serve the Prefect UI")] = True,
) -> None:
    """Start PostgreSQL, S3 (moto), the MLflow server and the Prefect server on 127.0.0.1 (ports
    from settings) and wait until each is healthy; prints the server-profile environment."""
    if timeout <= 0:
        raise UserError("--timeout must be > 0")
    config = StackConfig.from_settings(startup_timeout_s=timeout, prefect_ui=ui)
    if (config.root / "state.json").exists():
        Stack.load(config.root).down()  # leftovers of a stack that was not brought down
    with stoppable():  # a stop half-way brings down what was started (``Stack.up``)
        env = Stack(config).up()
    say(f"stack up; logs in {config.logs}")
    say(f"  MLflow   {config.mlflow_url}")
    say(f"  Prefect  {config.prefect_api_url}")
    say(f"  S3       {config.s3_endpoint} (bucket {config.bucket})")
    say(f"server profile: source {config.root / 'env'}   (or export these)")
    for key, value in env.items():  # the env file holds the secrets; the screen does not
        say(f"export {key}={value}")


@app.command()
@command
def down() -> None:
    """Stop the services ``stack up`` started (an existing PostgreSQL is left running)."""
    root = default_root()
    if not (root / "state.json").exists():
        say(f"no stack is up (nothing in {root})")
        return
    stopped = Stack.load(root).down()
    say("stopped " + (", ".join(stopped) if stopped else "nothing"))


@app.command()
@command
def status(
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Health of each service; exit 1 when any is down."""
    root = default_root()
    up_before = (root / "state.json").exists()
    stack = Stack.load(root) if up_before else Stack(StackConfig.from_settings())
    health = stack.status()
    if json_out:
        say(json.dumps(health, indent=2))
    else:
        for name, info in health.items():
            mark = "up  " if info["healthy"] else "DOWN"
            pid = f"pid {info['pid']}" if info["pid"] else ""
            say(f"  {mark} {name:<9} {info['url'] or '-':<45} {pid}")
    if not all(info["healthy"] for info in health.values()):
        raise typer.Exit(ExitCode.FAILED)
