"""``veracity train`` and ``veracity evaluate``: the model stages, on an accepted dataset only.

torch, Lightning and the validation gate are imported inside the commands: at start-up on these
2 cores ``import lightning`` costs 4.6 s and ``import validation`` (Great Expectations) 3.7 s,
which ``veracity --help`` and every other command would pay.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import typer

from flows.cli.common import command, say
from flows.cli.registry import check_gated
from infra.errors import UserError
from infra.storage import check_output_file

if TYPE_CHECKING:
    from models.evaluate import EvalReport

SPLITS = ("train", "validation", "test")


@command
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
    from validation.acceptance import require_accepted

    require_accepted(uri)
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
    val = {k: result.metrics.get(f"val/{k}", float("nan")) for k in METRICS}
    say(
        f"model  {result.model_dir}\nsteps  {result.steps}\n"
        "val    " + " ".join(f"{name}={val[key]:.3f}" for key, name in METRICS.items())
    )


METRICS = {
    "base_acc": "base_acc",
    "final_acc": "final_acc",
    "routed_fraction": "routed",
    "estimator_auroc": "auroc",
}


@command
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
    allow_ungated: Annotated[
        bool, typer.Option(help="evaluate an alias moved outside the gate (forensics; audited)")
    ] = False,
) -> None:
    """Score a model against the world model's ground truth (accuracy, hallucination, latency)."""
    from models.evaluate import EVAL_PER_DOMAIN, resolve_model, save_report
    from models.evaluate import evaluate as run_eval
    from validation.acceptance import require_accepted

    if split not in SPLITS:
        raise UserError(f"--split must be train, validation or test, got {split!r}")
    if per_domain is not None and per_domain < 0:
        raise UserError(f"--per-domain must be 0 (every question) or more, got {per_domain}")
    if report:
        check_output_file(report)
    alias = registered_alias(model)
    if alias:
        check_gated(alias, f"evaluate {model}", allow_ungated)
    model_dir = resolve_model(model)  # a mistyped model first: it is the cheaper check
    require_accepted(uri)
    sample = EVAL_PER_DOMAIN if per_domain is None else per_domain or None
    result = run_eval(model_dir, uri, split, per_domain=sample)
    if report:
        save_report(result, report)
    say(format_report(result))


def registered_alias(model: str) -> str | None:
    """The alias of ``models:/veracity-apr@ALIAS``; ``None`` for any other model reference."""
    match = re.fullmatch(r"models:/([^/@]+)@([\w-]+)", model)
    if match is None:
        return None
    from registry.client import MODEL_NAME

    return match[2] if match[1] == MODEL_NAME else None


def format_report(r: EvalReport) -> str:
    acc, hal = (f"[{lo:.3f}, {hi:.3f}]" for lo, hi in (r.accuracy_ci95, r.hallucination_ci95))
    by_domain = " ".join(f"{d}={v:.3f}" for d, v in r.accuracy_by_domain.items())
    by_kind = " ".join(f"{k}={v:.3f}" for k, v in r.accuracy_by_kind.items())
    return (
        f"questions      {r.n}\n"
        f"accuracy       {r.accuracy:.3f} {acc}  {by_domain}\n"
        f"by kind        {by_kind}\n"
        f"hallucination  {r.hallucination_rate:.3f} {hal} of all, "
        f"{r.hallucination_attempted:.3f} of attempted\n"
        f"abstention     {r.abstention_rate:.3f} (threshold {r.abstain_threshold:.3f})\n"
        f"latency        p50 {r.latency_p50_ms:.1f} ms, p95 {r.latency_p95_ms:.1f} ms\n"
        f"routed         {r.routed_fraction:.3f}; estimator AUROC {r.estimator_auroc:.3f}, "
        f"ECE {r.ece:.3f}, Brier {r.brier:.3f}"
    )
