"""The ``veracity`` command. Thin: parse, call a stage, print; user errors are one line, exit 2."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import nullcontext
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer

from infra.settings import get_settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Veracity: precision-first language models, from world model to champion.",
)

F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def _before_every_command(ctx: typer.Context) -> None:
    """A setting that cannot be used (environment or veracity.toml) stops every command in one
    line before it starts, rather than in a traceback from whichever part reads it first."""
    import logging

    from infra.settings import SettingsError

    # a new home's first MLflow call creates its tables: not news to the person who typed it
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
    if ctx.resilient_parsing or "--help" in sys.argv[1:]:
        return
    try:
        get_settings()
    except SettingsError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None


class UserError(Exception):
    """Bad input from the person at the keyboard: reported in one line, never a traceback."""


def user_errors(fn: F) -> F:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from infra.storage import StorageError
        from worldgen.dataset import DatasetError

        try:
            return fn(*args, **kwargs)
        except (UserError, DatasetError, StorageError, ValueError, KeyError) as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _domains(domain: str) -> list[str]:
    from worldgen.domains import DOMAIN_NAMES

    if domain == "all":
        return list(DOMAIN_NAMES)
    if domain not in DOMAIN_NAMES:
        raise UserError(f"--domain must be one of {', '.join(DOMAIN_NAMES)}, all; got {domain!r}")
    return [domain]


def _default_out(seed: int, n: int) -> str:
    from infra.storage import join

    return join(get_settings().datasets_root, f"ds-seed{seed}-n{n}")


@app.command()
@user_errors
def generate(
    domain: Annotated[str, typer.Option(help="medical, legal, financial or all")] = "all",
    n: Annotated[int, typer.Option(help="records per domain")] = 2000,
    seed: Annotated[int, typer.Option(help="master seed")] = 0,
    shards: Annotated[
        int, typer.Option(help="parquet shards per table (content is identical)")
    ] = 1,
    out: Annotated[str | None, typer.Option(help="folder or s3://bucket/prefix")] = None,
    workers: Annotated[
        int, typer.Option(help="processes generating shards at once (at least as many shards)")
    ] = 1,
) -> None:
    """Generate a world-model dataset; prints its URI and digest.

    The digest is the same for any --shards and --workers."""
    from worldgen.dataset import generate as run
    from worldgen.dataset import process_pool

    # one worker runs in this process (no pool to start); process_pool checks any other count
    pool = nullcontext(None) if workers == 1 else process_pool(workers)
    # at least a shard per worker; a bad --shards is left as given, for generate to refuse
    at_least = shards if shards < 1 else max(shards, workers)
    with pool as mapper:
        ref = run(
            _domains(domain), n, seed, out or _default_out(seed, n), shards=at_least, mapper=mapper
        )
    typer.echo(f"{ref.uri}\n{ref.digest}")


@app.command()
@user_errors
def summary(uri: str) -> None:
    """Print a dataset's manifest summary (domains, sizes, splits, digest)."""
    typer.echo(describe(uri))


def describe(uri: str) -> str:
    from worldgen.dataset import read_manifest

    m = read_manifest(uri)
    lines = [
        f"dataset {uri}",
        f"digest  {m['digest']}",
        f"seed    {m['seed']}",
        f"{'domain':<10} {'records':>8} {'docs':>8} {'qa':>8}  splits (train/validation/test)",
    ]
    for name, info in m["domains"].items():
        s = info["splits"]
        lines.append(
            f"{name:<10} {info['rows']['records']:>8} {info['rows']['documents']:>8} "
            f"{info['rows']['qa']:>8}  {s.get('train', 0)}/{s.get('validation', 0)}/{s.get('test', 0)}"
        )
    return "\n".join(lines)


@app.command()
@user_errors
def train(
    uri: str,
    mode: Annotated[str, typer.Option(help="dense, apr, all or random")] = "apr",
    devices: Annotated[int, typer.Option(help="devices (CPU processes or GPUs)")] = 1,
    num_nodes: Annotated[int, typer.Option(help="nodes (launch one per node with torchrun)")] = 1,
    strategy: Annotated[str, typer.Option(help="auto or ddp")] = "auto",
    max_steps: Annotated[int, typer.Option(help="optimizer steps")] = 300,
    precision: Annotated[
        str, typer.Option(help="Lightning precision: 32-true, bf16-mixed")
    ] = "32-true",
    batch_size: Annotated[int, typer.Option(help="examples per device per step")] = 32,
    seed: Annotated[int, typer.Option(help="training seed")] = 0,
    out: Annotated[str | None, typer.Option(help="run directory")] = None,
    resume: Annotated[bool, typer.Option(help="continue from the run's last checkpoint")] = False,
    tiny: Annotated[bool, typer.Option(help="a 2-layer, 64-wide model (smoke tests)")] = False,
) -> None:
    """Fine-tune the APR transformer on a validated dataset's QA pairs."""
    from models.sizes import TINY_MODEL
    from models.train import TrainConfig
    from models.train import train as run_training

    model = dict(TINY_MODEL) if tiny else {}
    config = TrainConfig(
        mode=mode,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        max_steps=max_steps,
        precision=precision,
        batch_size=batch_size,
        seed=seed,
        out=out,
        resume=resume,
        model=model,
        checkpoint_every=max(1, min(50, max_steps // 4)),
    )
    result = run_training(uri, config)
    typer.echo(
        f"model  {result.model_dir}\nsteps  {result.steps}\n"
        f"val    base_acc={result.metrics.get('val/base_acc', float('nan')):.3f} "
        f"final_acc={result.metrics.get('val/final_acc', float('nan')):.3f} "
        f"routed={result.metrics.get('val/routed_fraction', float('nan')):.3f} "
        f"auroc={result.metrics.get('val/estimator_auroc', float('nan')):.3f}"
    )


@app.command()
@user_errors
def evaluate(
    model: Annotated[
        str, typer.Argument(help="model directory or MLflow URI (models:/veracity-apr@champion)")
    ],
    uri: Annotated[str, typer.Argument(help="dataset URI")],
    split: Annotated[str, typer.Option(help="train, validation or test")] = "test",
    report: Annotated[str | None, typer.Option(help="write the full report (JSON) here")] = None,
    per_domain: Annotated[
        int | None,
        typer.Option(
            help="questions per domain and split, the same for every model (default 300); 0: all"
        ),
    ] = None,
) -> None:
    """Score a model against the world model's ground truth (accuracy, hallucination, latency)."""
    from models.evaluate import EVAL_PER_DOMAIN, save_report
    from models.evaluate import evaluate as run_eval

    if split not in ("train", "validation", "test"):
        raise UserError(f"--split must be train, validation or test, got {split!r}")
    if per_domain is not None and per_domain < 0:
        raise UserError(f"--per-domain must be 0 (every question) or more, got {per_domain}")
    sample = EVAL_PER_DOMAIN if per_domain is None else per_domain or None
    if report:
        from infra.storage import check_output_file

        check_output_file(report)
    result = run_eval(model, uri, split, per_domain=sample)
    if report:
        save_report(result, report)
    acc, hal = (
        f"[{lo:.3f}, {hi:.3f}]" for lo, hi in (result.accuracy_ci95, result.hallucination_ci95)
    )
    typer.echo(
        f"questions      {result.n}\n"
        f"accuracy       {result.accuracy:.3f} {acc}  "
        + " ".join(f"{d}={v:.3f}" for d, v in result.accuracy_by_domain.items())
        + f"\nby kind        {' '.join(f'{k}={v:.3f}' for k, v in result.accuracy_by_kind.items())}\n"
        f"hallucination  {result.hallucination_rate:.3f} {hal} of all, {result.hallucination_attempted:.3f} of attempted\n"
        f"abstention     {result.abstention_rate:.3f} (threshold {result.abstain_threshold:.3f})\n"
        f"latency        p50 {result.latency_p50_ms:.1f} ms, p95 {result.latency_p95_ms:.1f} ms\n"
        f"routed         {result.routed_fraction:.3f}; estimator AUROC {result.estimator_auroc:.3f}, "
        f"ECE {result.ece:.3f}, Brier {result.brier:.3f}"
    )


def _base_precision_in_force() -> str:
    """What VERACITY_BASE_PRECISION asks and what training here gets: `auto -> bf16 (cpu)`."""
    from models.precision import base_precision, requested, training_device_type

    asked, device = requested(), training_device_type()
    return f"{asked} -> {base_precision(device)} ({device})"


@app.command()
@user_errors
def settings() -> None:
    """Show the settings in force (profile, home, stores, the base stack's precision).

    Credentials are never printed."""
    s = get_settings()
    shown = {
        "profile": s.profile,
        "home": str(s.home),
        "datasets": s.datasets_root,
        "database": s.db_url,
        "mlflow": s.tracking_uri,
        "s3_endpoint": s.s3.endpoint_url,
        "base_precision": _base_precision_in_force(),
    }
    json.dump(shown, sys.stdout, indent=2)
    typer.echo()


def _register_stage_commands() -> None:
    from flows.registry_cmd import (
        promote_command,
        registry_command,
        rollback_command,
        serve_command,
    )
    from flows.run_cmd import deploy_command, run_command, ui_command
    from flows.stack_cmd import stack_down_command, stack_status_command, stack_up_command
    from flows.validate_cmd import validate_command

    app.command(name="run")(run_command)
    app.command(name="deploy")(deploy_command)
    app.command(name="ui")(ui_command)
    app.command(name="validate")(validate_command)
    app.command(name="promote")(promote_command)
    app.command(name="rollback")(rollback_command)
    app.command(name="registry")(registry_command)
    app.command(name="serve")(serve_command)
    stack = typer.Typer(help="PostgreSQL, S3, MLflow and Prefect servers for the server profile.")
    stack.command(name="up")(stack_up_command)
    stack.command(name="down")(stack_down_command)
    stack.command(name="status")(stack_status_command)
    app.add_typer(stack, name="stack")


_register_stage_commands()


def main() -> None:  # pragma: no cover - console entry
    app()
