"""``veracity run``, ``veracity deploy`` and ``veracity ui``: the pipeline and its surroundings.

Prefect and the pipeline are imported inside the commands, after :func:`prefect_environment`:
Prefect reads its settings once, at import (and it costs ~1 s at start-up on these 2 cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Annotated, Any

import typer

from flows.cli.common import ConfidenceOption, RiskOption, command, fail, say
from flows.cli.stops import stoppable
from flows.params import PipelineParams, check_params
from flows.summary import summary_rows
from infra.errors import ExitCode, UserError
from infra.procs import check_listen
from infra.settings import get_settings
from infra.storage import check_output_file
from models.config import TrainConfig
from worldgen.domains import domain_names

DEFAULT_N = PipelineParams.model_fields["n"].default


def prefect_environment() -> None:
    """Embedded defaults: Prefect's temporary server with its state under the Veracity home
    (unless PREFECT_API_URL / PREFECT_HOME / the server profile say otherwise)."""
    s = get_settings()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Prefect's client-side telemetry
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    # The temporary server's default 20 s start budget is too short on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if s.prefect_api_url and "PREFECT_API_URL" not in os.environ:
        os.environ["PREFECT_API_URL"] = s.prefect_api_url
    if "PREFECT_HOME" not in os.environ:
        home = (s.home / "prefect").resolve()
        home.mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = str(home)


@command
def run(
    n: Annotated[int | None, typer.Option(help=f"records per domain (default {DEFAULT_N})")] = None,
    seed: Annotated[int, typer.Option(help="dataset seed; a new seed gives a challenger")] = 0,
    domain: Annotated[str, typer.Option(help=f"{', '.join(domain_names())} or all")] = "all",
    steps: Annotated[int | None, typer.Option(help=TrainConfig.help("max_steps"))] = None,
    mode: Annotated[str | None, typer.Option(help=TrainConfig.help("mode"))] = None,
    devices: Annotated[int | None, typer.Option(help=TrainConfig.help("devices"))] = None,
    tiny: Annotated[bool, typer.Option(help="the smoke preset's tiny model (smoke runs)")] = False,
    promote: Annotated[bool, typer.Option(help="register and gate the model")] = True,
    risk: RiskOption = None,
    confidence: ConfidenceOption = None,
    json_out: Annotated[str | None, typer.Option("--json", help="write the result here")] = None,
) -> None:
    """The main job: generate, validate, train, evaluate, register and promote (Prefect flow).

    Exit 0 done; 2 bad input (before any work); 3 the dataset failed validation (nothing
    trained or registered); 1 a stage failed (earlier stages stay cached for the next run)."""
    prefect_environment()
    asked = {"mode": mode, "devices": devices, "max_steps": steps}
    train: dict[str, Any] = {k: v for k, v in asked.items() if v is not None}
    if (devices or 1) > 1:
        train["strategy"] = "ddp"
    if tiny:
        train["size"] = TrainConfig.from_preset("smoke").size
    domains = list(domain_names()) if domain == "all" else [domain]
    args: dict[str, Any] = {"domains": domains, "seed": seed, "train_params": train}
    args.update(risk=risk, confidence=confidence)
    from models.abstain import risk_target  # torch: 1.5 s, not for --help

    risk_target(risk, confidence)  # a target that cannot be stated fails before any work
    if n is not None:
        args["n"] = n
    check_params(domains=domains, n=n, seed=seed, train=dict(train))  # before any stage starts
    if json_out:
        check_output_file(json_out)
    _check_tracking_store()
    with stoppable():
        result = run_pipeline(args)
    if json_out:
        with open(json_out, "w") as fh:
            json.dump(result, fh, indent=2, default=str)
    say(format_summary(result))


def _check_tracking_store() -> None:
    """A tracking server that does not answer fails the run before any stage does work."""
    from registry.client import check_reachable

    check_reachable(get_settings().tracking_uri)


def run_pipeline(args: dict[str, Any]) -> dict[str, Any]:
    """Run the ``pipeline`` flow in this process with the embedded defaults."""
    start = time.perf_counter()
    prefect_environment()
    from flows.pipeline import pipeline
    from flows.tasks import RejectedDataset

    try:
        result: dict[str, Any] = pipeline(**args)
    except RejectedDataset as exc:
        say(str(exc), err=True)
        fail("the dataset failed validation; nothing was trained or registered", ExitCode.REJECTED)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    return result


def format_summary(result: dict[str, Any]) -> str:
    lines = ["", "Veracity run summary", "-" * 60]
    for stage, info in result.get("stages", {}).items():
        cached = "(from cache)" if info["cached"] else ""
        lines.append(f"  {stage:<9} {info['seconds']:>7.1f} s  {cached}")
    lines.append("-" * 60)
    for row in summary_rows(result):
        lines.append(f"  {row['metric']:<20} {row['value']}")
    lines.append("-" * 60)
    model = result.get("model") or {}
    lines += [
        f"  dataset  {(result.get('dataset') or {}).get('uri')}",
        f"  model    {model.get('model_uri')}",
        f"  wall     {result.get('wall_s', result.get('seconds'))} s",
        "",
        "Where to look next:",
        "  veracity ui                 MLflow UI on http://127.0.0.1:5000 (runs, models, plots)",
        f"  run page                    {result.get('mlflow_run_url')}",
        "  veracity registry           versions, aliases and gate decisions",
        "  veracity run --seed N       another seed: a new dataset, a challenger and a gate decision",
        f"  Prefect artifacts           DO_NOT_TRACK=1 PREFECT_HOME={os.environ.get('PREFECT_HOME', '')}"
        " prefect artifact ls",
        f"  home                        {get_settings().home.resolve()}",
    ]
    return "\n".join(lines)


@command
def deploy(
    n: Annotated[int | None, typer.Option(help="records per domain for scheduled runs")] = None,
    nightly: Annotated[
        str | None, typer.Option(help="cron of the data refresh [default: prefect.yaml's]")
    ] = None,
    weekly: Annotated[
        str | None, typer.Option(help="cron of retrain + promotion [default: prefect.yaml's]")
    ] = None,
) -> None:
    """Serve the scheduled flows: nightly refresh and validation, weekly retrain and promotion.

    Runs until interrupted (Prefect's flow.serve). Needs a Prefect server (PREFECT_API_URL) to
    keep schedules across restarts; without one Prefect's temporary server is used."""
    prefect_environment()
    from prefect.client.schemas.schedules import CronSchedule

    from flows.deploy import serve_deployments

    for expr in (e for e in (nightly, weekly) if e is not None):
        try:
            CronSchedule(cron=expr)
        except ValueError:
            raise UserError(f"not a cron expression: {expr!r}") from None
    if n is not None and n < 20:
        raise UserError("--n must be >= 20")
    with stoppable():
        serve_deployments(n=n, nightly=nightly, weekly=weekly)


@command
def ui(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1", min=1, max=65535)] = 5000,
) -> None:
    """Open the MLflow UI over the same store on http://127.0.0.1:PORT."""
    from registry.tracking import artifact_root

    check_listen("127.0.0.1", port)
    s = get_settings()
    store = ["--backend-store-uri", s.tracking_uri, "--default-artifact-root", artifact_root()]
    # one person browsing: 4 workers take ~20 s to answer on 2 cores
    serve = ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    say(f"MLflow UI on http://127.0.0.1:{port} (store {s.tracking_uri}); Ctrl-C stops it")
    # The UI needs no background job runner (it starts a dozen worker processes otherwise).
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with stoppable():
        code = subprocess.call([sys.executable, "-m", "mlflow", "ui", *store, *serve], env=env)
    raise typer.Exit(code)
