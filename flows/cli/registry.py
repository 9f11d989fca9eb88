"""``veracity promote``, ``rollback``, ``registry`` and ``serve``: the model registry's face.

The registry package is imported inside the commands: it loads MLflow, ~2 s at start-up on
these 2 cores, which every other command would pay.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.common import command, say
from flows.cli.stops import stoppable
from infra.errors import ExitCode
from infra.procs import check_listen
from infra.settings import get_settings
from worldgen.dataset import read_manifest


def check_gated(alias: str, purpose: str, allow: bool) -> None:
    """The gated alias, or a refusal; with ``allow``, a warning and an audit row instead."""
    from registry import record_ungated_use, require_gated

    if not allow:
        require_gated(alias)
        return
    decision = record_ungated_use(alias, purpose)
    if decision is not None:
        say(f"warning: @{alias} is not what the gate decided; audit decision #{decision}", err=True)


def _evaluate(model_uri: str, dataset_uri: str) -> Any:
    """The gate's re-evaluation of a side; torch is loaded only when the gate needs one."""
    import mlflow

    from models.evaluate import evaluate

    mlflow.set_tracking_uri(get_settings().tracking_uri)
    return evaluate(model_uri, dataset_uri)


@command
def promote(
    version: Annotated[int, typer.Argument(help="model version of veracity-apr to gate")],
    eval_dataset: Annotated[
        str | None, typer.Option(help="frozen evaluation dataset URI both sides must be scored on")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="who decides (default $USER@host)")] = None,
) -> None:
    """Gate a version against the champion; move @champion only if it is better.

    Exit 0 promoted; 3 refused (the decision is audited either way); 2 bad input."""
    from registry import promote as run_gate

    if eval_dataset is not None:
        read_manifest(eval_dataset)  # a mistyped dataset is bad input, not a gate decision
    decision = run_gate(version, evaluate=_evaluate, eval_dataset=eval_dataset, actor=actor)
    verdict = "PROMOTED" if decision.promoted else "REFUSED"
    before, after = decision.champion_version_before, decision.champion_version_after
    say(f"{verdict} v{version} (champion before: {_v(before)}, after: {_v(after)})")
    say(f"reason: {decision.reason}")
    stat = decision.statistic
    if stat:
        ci = f"[{stat['ci_low']:+.4f}, {stat['ci_high']:+.4f}]"
        say(
            f"paired accuracy diff {stat['accuracy_diff']:+.4f}, {stat['confidence']:.0%} CI "
            f"{ci}, McNemar p={stat['mcnemar_p']:.3g}, n={stat['n_paired']}"
        )
    say(f"audit decision #{decision.id}")
    if not decision.promoted:
        raise typer.Exit(ExitCode.REJECTED)


@command
def rollback(
    actor: Annotated[str | None, typer.Option(help="who decides (default $USER@host)")] = None,
) -> None:
    """Move @champion back to @previous-champion."""
    from registry import rollback as run_rollback

    decision = run_rollback(actor=actor)
    say(f"{decision.reason} (audit decision #{decision.id})")


@command
def registry(
    decisions: Annotated[
        int, typer.Option(help="how many recent decisions to show; 0: all of them", min=0)
    ] = 5,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="print versions and decisions in full (metrics, test, policy) as JSON"
        ),
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="check that no audited decision was altered or deleted")
    ] = False,
) -> None:
    """List veracity-apr versions, aliases, key metrics and the latest gate decisions.

    Exit 4 when --verify finds the audit trail altered."""
    from registry import recent_decisions, registry_table

    if verify:
        return _verify_audit()
    rows = registry_table()
    recent = recent_decisions(decisions or None) if rows else []
    if as_json:
        export = {"versions": rows, "decisions": recent}  # an auditor's: every field of each
        say(json.dumps(export, indent=2, default=_iso))
    else:
        say(format_table(rows, recent))


def _verify_audit() -> None:
    from registry import verify_audit

    check, problems = verify_audit()
    if check.broken_at is not None:
        problems = [f"decision #{check.broken_at} {check.problem}"]
    for problem in problems:
        typer.secho(f"audit trail altered: {problem}", err=True, fg=typer.colors.RED)
    if problems:
        raise typer.Exit(ExitCode.TAMPERED)
    n = check.before_chain
    older = f" ({n} older {'one has' if n == 1 else 'ones have'} no hash)" if n else ""
    head = f", head {check.head[:12]}" if check.head else ""
    say(f"audit trail intact: {check.chained} decisions chained{older}{head}")


def _iso(value: Any) -> str:
    """Audit times in ISO 8601."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _v(version: int | None) -> str:
    return "none" if version is None else f"v{version}"


def _num(value: str | None, fmt: str) -> str:
    try:
        return format(float(value), fmt) if value is not None else "-"
    except ValueError:
        return str(value)


def format_table(rows: list[dict[str, Any]], recent: list[dict[str, Any]]) -> str:
    if not rows:
        return "no registered versions of veracity-apr"
    header = ("version", "aliases", "dataset", "accuracy", "halluc", "p95 ms")
    lines = ["{:>7}  {:<30} {:<9} {:>8} {:>7} {:>7}  decision".format(*header)]
    for r in rows:
        lines.append(
            f"{r['version']:>7}  {','.join(r['aliases']) or '-':<30} "
            f"{r['validation_status'] or '-':<9} {_num(r['accuracy'], '.4f'):>8} "
            f"{_num(r['hallucination'], '.4f'):>7} {_num(r['latency_p95_ms'], '.1f'):>7}  "
            f"{r['decision'] or '-'}"
        )
    if recent:
        lines += ["", "recent decisions:"]
        for d in recent:
            verdict = "promoted: " if d["promoted"] else "refused: "
            if d["action"] == "rollback":
                verdict = ""  # the reason says "rollback: champion vX -> vY"
            when = f"{d['decided_at']:%Y-%m-%d %H:%M:%S}"
            who = f"{d['actor']} {_v(d['challenger_version'])}"
            lines.append(f"  #{d['id']} {when} {who} {verdict}{d['reason']}")
    return "\n".join(lines)


@command
def serve(
    alias: Annotated[str, typer.Option(help="registry alias to serve")] = "champion",
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on", min=1, max=65535)] = 5001,
    allow_ungated: Annotated[
        bool, typer.Option(help="serve an alias moved outside the gate (forensics; audited)")
    ] = False,
) -> None:
    """Serve veracity-apr@ALIAS over HTTP with MLflow's scoring server (POST /invocations).

    Exit 4 when the alias was moved outside the gate (see `veracity registry --verify`)."""
    from registry.client import MODEL_NAME, client

    check_listen(host, port)
    check_gated(alias, f"serve @{alias}", allow_ungated)
    tracking = get_settings().tracking_uri
    version = client().get_model_version_by_alias(MODEL_NAME, alias)
    say(f"serving {MODEL_NAME} v{version.version} (@{alias}) on http://{host}:{port}")
    bin_dir = Path(sys.executable).parent
    # --env-manager local: serve from this installation (building a fresh env needs the
    # network); mlflow execs `uvicorn` by name, so this environment's bin comes first on PATH
    path = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    # the registry too: an MLFLOW_REGISTRY_URI of the shell (or left by mlflow.set_registry_uri
    # in this process) would serve that registry's @alias, not the version gated here
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking, "MLFLOW_REGISTRY_URI": tracking}
    env["PATH"] = path
    model = f"models:/{MODEL_NAME}@{alias}"
    listen = ["--host", host, "--port", str(port)]
    cmd = [str(bin_dir / "mlflow"), "models", "serve", "-m", model, "--env-manager", "local"]
    with stoppable():
        code = subprocess.run([*cmd, *listen], env=env).returncode
    raise typer.Exit(code)
