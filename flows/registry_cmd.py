"""``veracity promote VERSION``, ``veracity rollback``, ``veracity registry``, ``veracity serve``.

Register in ``flows/cli.py`` with::

    app.command(name="promote")(promote_command)
    app.command(name="rollback")(rollback_command)
    app.command(name="registry")(registry_command)
    app.command(name="serve")(serve_command)

Exit codes: 0 done (promoted / rolled back / listed / audit trail intact); 3 the gate refused
the version (the decision is still audited); 4 ``registry --verify`` found the audit trail
altered; 2 bad input (unknown version, nothing to roll back to, unreachable store): one line on
stderr, no traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

EXIT_REFUSED = 3
EXIT_USAGE = 2
EXIT_TAMPERED = 4


@contextmanager
def _user_errors() -> Iterator[None]:
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    from registry import PromotionError

    try:
        yield
    except (PromotionError, MlflowException, SQLAlchemyError, ValueError, KeyError,
            OSError) as exc:  # fmt: skip
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(EXIT_USAGE) from None


def _evaluate(model_uri: str, dataset_uri: str) -> Any:
    """``models.evaluate.evaluate``, imported only when the gate needs a re-evaluation (torch)."""
    import mlflow

    from infra.settings import get_settings
    from models.evaluate import evaluate

    mlflow.set_tracking_uri(get_settings().tracking_uri)
    return evaluate(model_uri, dataset_uri)


def promote_command(
    version: Annotated[int, typer.Argument(help="model version of veracity-apr to gate")],
    eval_dataset: Annotated[
        str | None, typer.Option(help="frozen evaluation dataset URI both sides must be scored on")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="who decides (default $USER@host)")] = None,
) -> None:
    """Gate a version against the champion; move @champion only if it is better."""
    with _user_errors():
        from registry import promote
        from worldgen.dataset import read_manifest

        if eval_dataset is not None:
            read_manifest(eval_dataset)  # a mistyped dataset is bad input, not a gate decision
        decision = promote(version, evaluate=_evaluate, eval_dataset=eval_dataset, actor=actor)
    verdict = "PROMOTED" if decision.promoted else "REFUSED"
    typer.echo(f"{verdict} v{version} (champion before: {_v(decision.champion_version_before)}, "
               f"after: {_v(decision.champion_version_after)})\nreason: {decision.reason}")  # fmt: skip
    stat = decision.statistic
    if stat:
        typer.echo(f"paired accuracy diff {stat['accuracy_diff']:+.4f}, "
                   f"{stat['confidence']:.0%} CI [{stat['ci_low']:+.4f}, {stat['ci_high']:+.4f}], "
                   f"McNemar p={stat['mcnemar_p']:.3g}, n={stat['n_paired']}")  # fmt: skip
    typer.echo(f"audit decision #{decision.id}")
    if not decision.promoted:
        raise typer.Exit(EXIT_REFUSED)


def rollback_command(
    actor: Annotated[str | None, typer.Option(help="who decides (default $USER@host)")] = None,
) -> None:
    """Move @champion back to @previous-champion."""
    with _user_errors():
        from registry import rollback

        decision = rollback(actor=actor)
    typer.echo(f"{decision.reason} (audit decision #{decision.id})")


def registry_command(
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
    """List veracity-apr versions, aliases, key metrics and the latest gate decisions."""
    if verify:
        return _verify_audit()
    with _user_errors():
        from registry import recent_decisions, registry_table

        rows = registry_table()
        recent = recent_decisions(decisions or None) if rows else []
    if as_json:
        import json

        export = {"versions": rows, "decisions": recent}  # an auditor's: every field of each
        typer.echo(json.dumps(export, indent=2, default=_iso))
    else:
        typer.echo(format_table(rows, recent))


def _verify_audit() -> None:
    with _user_errors():
        from registry import verify_audit

        check, problems = verify_audit()
    if check.broken_at is not None:
        problems = [f"decision #{check.broken_at} {check.problem}"]
    for problem in problems:
        typer.secho(f"audit trail altered: {problem}", err=True, fg=typer.colors.RED)
    if problems:
        raise typer.Exit(EXIT_TAMPERED)
    n = check.before_chain
    older = f" ({n} older {'one has' if n == 1 else 'ones have'} no hash)" if n else ""
    head = f", head {check.head[:12]}" if check.head else ""
    typer.echo(f"audit trail intact: {check.chained} decisions chained{older}{head}")


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
    lines = [f"{'version':>7}  {'aliases':<30} {'dataset':<9} {'accuracy':>8} {'halluc':>7} "
             f"{'p95 ms':>7}  decision"]  # fmt: skip
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
            lines.append(f"  #{d['id']} {d['decided_at']:%Y-%m-%d %H:%M:%S} {d['actor']} "
                         f"{_v(d['challenger_version'])} {verdict}{d['reason']}")  # fmt: skip
    return "\n".join(lines)


def serve_command(
    alias: Annotated[str, typer.Option(help="registry alias to serve")] = "champion",
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on", min=1, max=65535)] = 5001,
) -> None:
    """Serve veracity-apr@ALIAS over HTTP with MLflow's scoring server (POST /invocations)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    with _user_errors():
        from infra.procs import port_open
        from infra.settings import get_settings
        from registry.client import MODEL_NAME, client

        if port_open(host, port):
            raise ValueError(f"port {port} on {host} is in use; pick another with --port")
        tracking = get_settings().tracking_uri
        version = client().get_model_version_by_alias(MODEL_NAME, alias)
    typer.echo(f"serving {MODEL_NAME} v{version.version} (@{alias}) on http://{host}:{port}")
    bin_dir = Path(sys.executable).parent
    # --env-manager local: serve from this installation (building a fresh env needs the
    # network); mlflow execs `uvicorn` by name, so this environment's bin comes first on PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking,
           "PATH": os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])}  # fmt: skip
    cmd = [str(bin_dir / "mlflow"), "models", "serve", "-m", f"models:/{MODEL_NAME}@{alias}",
           "--env-manager", "local", "--host", host, "--port", str(port)]  # fmt: skip
    raise typer.Exit(subprocess.run(cmd, env=env).returncode)
