"""``veracity train`` and ``veracity evaluate``: the model stages, on an accepted dataset only.

torch, Lightning and the validation gate are imported inside the commands: at start-up on these
2 cores ``import lightning`` costs 4.6 s and ``import validation`` (Great Expectations) 3.7 s,
which ``veracity --help`` and every other command would pay.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.common import ConfidenceOption, RiskOption, command, say
from flows.cli.registry import check_gated
from infra.errors import UserError
from infra.storage import check_output_file
from models.config import FIELDS, PRESETS, TrainConfig

if TYPE_CHECKING:
    from models.evaluate import EvalReport

SPLITS = ("train", "validation", "test")


def _option(name: str) -> Any:
    """A training option whose help and default are TrainConfig's (None here: not given)."""
    return typer.Option(help=TrainConfig.help(name))


@command
def train(
    uri: Annotated[str, typer.Argument(help="dataset URI (accepted by `veracity validate`)")],
    preset: Annotated[
        str, typer.Option(help=f"starting point: {', '.join(PRESETS)} (options override it)")
    ] = "cpu",
    mode: Annotated[str | None, _option("mode")] = None,
    size: Annotated[str | None, _option("size")] = None,
    devices: Annotated[int | None, _option("devices")] = None,
    num_nodes: Annotated[int | None, _option("num_nodes")] = None,
    strategy: Annotated[str | None, _option("strategy")] = None,
    max_steps: Annotated[int | None, _option("max_steps")] = None,
    precision: Annotated[str | None, _option("precision")] = None,
    batch_size: Annotated[int | None, _option("batch_size")] = None,
    lr: Annotated[float | None, _option("lr")] = None,
    seed: Annotated[int | None, _option("seed")] = None,
    checkpoint_every: Annotated[int | None, _option("checkpoint_every")] = None,
    out: Annotated[str | None, _option("out")] = None,
    resume: Annotated[bool, typer.Option(help=TrainConfig.help("resume"))] = False,
    tiny: Annotated[bool, typer.Option(help="the tiny model size (--size tiny)")] = False,
    base: Annotated[str | None, _option("base")] = None,
    base_tuning: Annotated[str | None, _option("base_tuning")] = None,
) -> None:
    """Fine-tune the APR transformer on an accepted dataset's QA pairs."""
    from models.train import train as run_training
    from validation.acceptance import require_accepted

    given = {k: v for k, v in locals().items() if k in FIELDS and v is not None}
    if tiny:
        given["size"] = "tiny"
    config = TrainConfig.from_preset(preset, **given)
    config.check()
    require_accepted(uri)
    result = run_training(uri, config)
    if result.node_rank > 0:
        say(
            f"node {result.node_rank} of {config.num_nodes}: trained as a worker "
            f"({result.steps} steps); node 0 writes the model"
        )
        return
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
    risk: RiskOption = None,
    confidence: ConfidenceOption = None,
    held_out_phrasing: Annotated[
        str | None,
        typer.Option(help="the dataset's held-out-phrasing twin (generate --phrasing held-out)"),
    ] = None,
) -> None:
    """Score a model against the world model's ground truth (accuracy, hallucination, latency).

    A model that was certified (a registered version) abstains as certified; a trained one is
    calibrated on the validation split for --risk at --confidence first."""
    from models.abstain import risk_target
    from models.evaluate import EVAL_PER_DOMAIN, resolve_model, save_report
    from models.evaluate import evaluate as run_eval
    from validation.acceptance import require_accepted

    if split not in SPLITS:
        raise UserError(f"--split must be train, validation or test, got {split!r}")
    if per_domain is not None and per_domain < 0:
        raise UserError(f"--per-domain must be 0 (every question) or more, got {per_domain}")
    if report:
        check_output_file(report)
    risk_target(risk, confidence)
    alias = registered_alias(model)
    if alias:
        check_gated(alias, f"evaluate {model}", allow_ungated)
    model_dir = resolve_model(model)  # a mistyped model first: it is the cheaper check
    require_accepted(uri)
    if held_out_phrasing is not None:
        require_accepted(held_out_phrasing)
    sample = EVAL_PER_DOMAIN if per_domain is None else per_domain or None
    result = run_eval(
        model_dir,
        uri,
        split,
        per_domain=sample,
        risk=risk,
        confidence=confidence,
        heldout_uri=held_out_phrasing,
    )
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
        f"abstention     {r.abstention_rate:.3f} ({r.abstain_score} over {r.abstain_threshold:.4f}); "
        f"coverage {r.coverage:.3f}, confident hallucination {r.confident_hallucination:.4f}\n"
        f"guarantee      {r.guarantee or 'none (a threshold fixed without a risk target)'}\n"
        + _reach_line(r)
        + f"latency        p50 {r.latency_p50_ms:.1f} ms, p95 {r.latency_p95_ms:.1f} ms\n"
        f"routed         {r.routed_fraction:.3f}; estimator AUROC {r.estimator_auroc:.3f}, "
        f"ECE {r.ece:.3f}, Brier {r.brier:.3f}" + (_heldout_line(r.heldout) if r.heldout else "")
    )


def _reach_line(r: EvalReport) -> str:
    if r.novelty_limit is None:
        return ""
    return (
        f"reaches        {r.guaranteed:.3f} of answered questions (novelty <= "
        f"{r.novelty_limit:.4f}); wrong among them {r.guaranteed_risk:.4f}\n"
    )


def _heldout_line(h: dict[str, Any]) -> str:
    by_domain = " ".join(f"{d}={v:.3f}" for d, v in h["accuracy_by_domain"].items())
    return (
        f"\nheld-out phr.  accuracy {h['accuracy']:.3f}  {by_domain}; hallucination "
        f"{h['hallucination_rate']:.3f}, coverage {h['coverage']:.3f}, confident hallucination "
        f"{h['confident_hallucination']:.4f}, guarantee reaches {h.get('guaranteed', 0.0):.3f}"
    )
