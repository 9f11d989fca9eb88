"""``veracity stack up|down|status``: the server-profile services as local processes.

Register in ``flows/cli.py`` with::

    stack_app = typer.Typer(help="PostgreSQL, S3, MLflow and Prefect servers (server profile)")
    stack_app.command(name="up")(stack_up_command)
    stack_app.command(name="down")(stack_down_command)
    stack_app.command(name="status")(stack_status_command)
    app.add_typer(stack_app, name="stack")

Where a docker engine is available, ``docker compose -f infra/docker-compose.yml up -d`` runs
the same stack in containers (MinIO instead of moto, plus a Prefect worker).

Exit codes: 0 done / all healthy; 1 a service failed to start or is unhealthy; 2 bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def _stack_root() -> Path:
    from infra.stack import default_root

    return default_root()


def stack_up_command(
    timeout: Annotated[float, typer.Option(help="seconds to wait for each service")] = 180.0,
    ui: Annotated[bool, typer.Option(help="serve the Prefect UI")] = True,
) -> None:
    """Start PostgreSQL, S3 (moto), the MLflow server and the Prefect server on 127.0.0.1 (ports
    from settings) and wait until each is healthy; prints the server-profile environment."""
    from infra.procs import StackError
    from infra.stack import Stack, StackConfig

    if timeout <= 0:
        typer.secho("error: --timeout must be > 0", err=True, fg=typer.colors.RED)
        raise typer.Exit(2)
    config = StackConfig.from_settings(startup_timeout_s=timeout, prefect_ui=ui)
    if (config.root / "state.json").exists():
        Stack.load(config.root).down()  # leftovers of a stack that was not brought down
    try:
        env = Stack(config).up()
    except StackError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    typer.echo(f"stack up; logs in {config.logs}")
    typer.echo(f"  MLflow   {config.mlflow_url}")
    typer.echo(f"  Prefect  {config.prefect_api_url}")
    typer.echo(f"  S3       {config.s3_endpoint} (bucket {config.bucket})")
    typer.echo(f"server profile: source {config.root / 'env'}   (or export these)")
    for key, value in env.items():
        typer.echo(f"export {key}={value}")


def stack_down_command() -> None:
    """Stop the services ``stack up`` started (an existing PostgreSQL is left running)."""
    from infra.stack import Stack

    root = _stack_root()
    if not (root / "state.json").exists():
        typer.echo(f"no stack is up (nothing in {root})")
        return
    stopped = Stack.load(root).down()
    typer.echo("stopped " + (", ".join(stopped) if stopped else "nothing"))


def stack_status_command(
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Health of each service; exit 1 when any is down."""
    from infra.stack import Stack, StackConfig

    root = _stack_root()
    stack = Stack.load(root) if (root / "state.json").exists() else Stack(
        StackConfig.from_settings()
    )  # fmt: skip
    status = stack.status()
    if json_out:
        typer.echo(json.dumps(status, indent=2))
    else:
        for name, info in status.items():
            mark = "up  " if info["healthy"] else "DOWN"
            pid = f"pid {info['pid']}" if info["pid"] else ""
            typer.echo(f"  {mark} {name:<9} {info['url'] or '-':<45} {pid}")
    if not all(info["healthy"] for info in status.values()):
        raise typer.Exit(1)
