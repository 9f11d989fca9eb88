"""The ``veracity`` command: one module per stage, each thin (parse, call a stage, print).

A person's error is one line on stderr and an exit code from ``infra.errors.ExitCode``
(``flows.cli.common.command``); a bug keeps its traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import typer

from flows.cli import data, model, registry, run, stack
from flows.cli.common import command, fail, say
from infra.settings import SettingsError, get_settings
from models.precision import base_precision, requested, training_device_type

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Veracity: precision-first language models, from world model to champion.",
)


@app.callback()
def _before_every_command(ctx: typer.Context) -> None:
    """A setting that cannot be used (environment or veracity.toml) stops every command in one
    line before it starts, rather than in a traceback from whichever part reads it first."""
    # a new home's first MLflow call creates its tables: not news to the person who typed it
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    if ctx.resilient_parsing or "--help" in sys.argv[1:]:
        return
    try:
        get_settings()
    except SettingsError as exc:
        fail(exc.one_line(), exc.exit_code)


@command
def settings() -> None:
    """Show the settings in force (profile, home, stores, the base stack's precision).

    Credentials are never printed."""
    s = get_settings()
    asked, device = requested(), training_device_type()
    shown = {
        "profile": s.profile,
        "home": str(s.home),
        "datasets": s.datasets_root,
        "database": s.db_url,
        "mlflow": s.tracking_uri,
        "s3_endpoint": s.s3.endpoint_url,
        "base_precision": f"{asked} -> {base_precision(device)} ({device})",
    }
    say(json.dumps(shown, indent=2))


COMMANDS: dict[str, Callable[..., Any]] = {
    "generate": data.generate,
    "summary": data.summary,
    "validate": data.validate,
    "train": model.train,
    "evaluate": model.evaluate,
    "run": run.run,
    "deploy": run.deploy,
    "ui": run.ui,
    "promote": registry.promote,
    "rollback": registry.rollback,
    "registry": registry.registry,
    "serve": registry.serve,
    "settings": settings,
}
for _name, _fn in COMMANDS.items():
    app.command(name=_name)(_fn)
app.add_typer(stack.app, name="stack")


def main() -> None:  # pragma: no cover - console entry
    app()
