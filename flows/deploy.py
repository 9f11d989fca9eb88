"""Scheduled deployments: nightly data refresh + validation, weekly retrain + promotion.

``veracity deploy`` serves both with ``prefect.serve`` (the multi-deployment form of
``flow.serve``): the process registers the deployments and their cron schedules on the
Prefect API and executes their runs as subprocesses. ``prefect.yaml`` at the repository root
offers the same deployments to ``prefect deploy`` on a process work pool.
"""

from __future__ import annotations

from typing import Any

NIGHTLY = "0 2 * * *"  # every day at 02:00
WEEKLY = "0 4 * * 0"  # Sundays at 04:00: after that night's refresh, so it reuses its dataset
REFRESH_NAME = "nightly-refresh"
RETRAIN_NAME = "weekly-retrain"


def deployments(n: int | None = None, nightly: str = NIGHTLY, weekly: str = WEEKLY) -> list[Any]:
    """The two ``RunnerDeployment``s (not yet registered)."""
    from flows.pipeline import pipeline, refresh

    params: dict[str, Any] = {"seed": None}  # None: today's date, shared by both schedules
    if n is not None:
        params["n"] = n
    return [
        refresh.to_deployment(
            name=REFRESH_NAME,
            cron=nightly,
            parameters=params,
            tags=["veracity", "data"],
            description="Generate today's dataset and run the validation gate.",
        ),
        pipeline.to_deployment(
            name=RETRAIN_NAME,
            cron=weekly,
            parameters=params,
            tags=["veracity", "training"],
            description="Retrain on the latest validated dataset, evaluate, gate and promote.",
        ),
    ]


def serve_deployments(
    n: int | None = None, nightly: str = NIGHTLY, weekly: str = WEEKLY, limit: int = 1
) -> None:
    """Register the deployments and execute their runs until interrupted."""
    from prefect import serve

    serve(*deployments(n, nightly, weekly), limit=limit)


if __name__ == "__main__":  # ``python -m flows.deploy``: what a service manager would run
    serve_deployments()
