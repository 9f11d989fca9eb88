"""Scheduled deployments: nightly data refresh + validation, weekly retrain + promotion.

``prefect.yaml`` at the repository root is the one definition of the deployments (name,
description, entrypoint, tags, parameters, cron schedule and timezone). ``prefect deploy --all``
registers them on a process work pool; ``veracity deploy`` reads the same file here and serves
them with ``prefect.serve`` (the multi-deployment form of ``flow.serve``): the process registers
the deployments and their schedules on the Prefect API and executes their runs as subprocesses.
Changing a cron in ``prefect.yaml`` changes both.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import prefect
import yaml
from prefect.schedules import Cron

from infra.errors import UserError

# The checkout's root, where `prefect deploy` is run from; the entrypoints are relative to it.
ROOT = Path(__file__).resolve().parents[1]
PREFECT_YAML = ROOT / "prefect.yaml"
REFRESH_NAME = "nightly-refresh"  # the deployment `veracity deploy --nightly` reschedules
RETRAIN_NAME = "weekly-retrain"  # the deployment `veracity deploy --weekly` reschedules


@dataclass(frozen=True)
class DeploymentSpec:
    """One entry of ``prefect.yaml``'s ``deployments`` list (one cron schedule)."""

    name: str
    entrypoint: str  # "flows/pipeline.py:refresh", relative to the repository root
    cron: str
    timezone: str | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)

    def load_flow(self) -> Any:
        """The ``Flow`` object the entrypoint names (``path/to/module.py:attribute``)."""
        path, _, attr = self.entrypoint.partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        return getattr(module, attr)


def load_specs(path: Path = PREFECT_YAML) -> list[DeploymentSpec]:
    """The deployments ``prefect.yaml`` defines, in its order."""
    if not path.is_file():
        raise UserError(
            f"{path} not found: the deployments are defined in prefect.yaml at the repository "
            "root; run from a source checkout (pip install -e .)"
        )
    doc = yaml.safe_load(path.read_text()) or {}
    specs = []
    for entry in doc.get("deployments") or []:
        schedules = [s for s in entry.get("schedules") or [] if s.get("active", True)]
        if len(schedules) != 1 or "cron" not in schedules[0]:
            raise UserError(
                f"{path}: deployment {entry.get('name')!r} needs one active cron schedule"
            )
        specs.append(
            DeploymentSpec(
                name=entry["name"],
                entrypoint=entry["entrypoint"],
                cron=schedules[0]["cron"],
                timezone=schedules[0].get("timezone"),
                description=entry.get("description"),
                tags=list(entry.get("tags") or []),
                parameters=dict(entry.get("parameters") or {}),
            )
        )
    return specs


def deployments(
    n: int | None = None,
    nightly: str | None = None,
    weekly: str | None = None,
    path: Path = PREFECT_YAML,
) -> list[Any]:
    """The ``RunnerDeployment``s of ``prefect.yaml`` (not yet registered).

    ``n`` adds a records-per-domain parameter to every deployment; ``nightly`` / ``weekly``
    replace the cron of the refresh / retrain deployment (None: prefect.yaml's)."""
    specs = load_specs(path)
    crons = {REFRESH_NAME: nightly, RETRAIN_NAME: weekly}
    missing = [name for name, cron in crons.items() if cron and name not in {s.name for s in specs}]
    if missing:
        raise UserError(f"{path} defines no deployment named {', '.join(missing)}")
    out = []
    for spec in specs:
        params = dict(spec.parameters)  # seed None: today's date, shared by both schedules
        if n is not None:
            params["n"] = n
        cron = crons.get(spec.name) or spec.cron
        out.append(
            spec.load_flow().to_deployment(
                name=spec.name,
                schedules=[Cron(cron, timezone=spec.timezone)],
                parameters=params,
                tags=spec.tags,
                description=spec.description,
            )
        )
    return out


def serve_deployments(
    n: int | None = None, nightly: str | None = None, weekly: str | None = None, limit: int = 1
) -> None:
    """Register the deployments and execute their runs until interrupted."""
    prefect.serve(*deployments(n, nightly, weekly), limit=limit)


if __name__ == "__main__":  # ``python -m flows.deploy``: what a service manager would run
    serve_deployments()
