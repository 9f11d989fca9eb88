"""Run summaries: the rows and markdown the flows publish as Prefect artifacts (and
``veracity run`` prints)."""

from __future__ import annotations

from typing import Any

# ------------------------------------------------------------------------------ summaries


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    evaluation = result.get("evaluation") or {}
    h = evaluation.get("headline", {})
    decision = ((result.get("promotion") or {}).get("decision")) or {}
    rows: list[dict[str, Any]] = [
        {"metric": "accuracy", "value": _fmt(h.get("accuracy"))},
        {"metric": "hallucination rate", "value": _fmt(h.get("hallucination_rate"))},
        {"metric": "routed fraction", "value": _fmt(h.get("routed_fraction"))},
        {"metric": "abstention rate", "value": _fmt(h.get("abstention_rate"))},
        {"metric": "coverage", "value": _fmt(h.get("coverage"))},
        {"metric": "confident halluc.", "value": _fmt(h.get("confident_hallucination"))},
        {"metric": "guarantee reaches", "value": _fmt(h.get("guaranteed"))},
        {"metric": "latency p95 (ms)", "value": _fmt(h.get("latency_p95_ms"), ".1f")},
    ]
    if "heldout_accuracy" in h:  # the same entities in phrasing training never saw
        rows += [
            {"metric": "held-out phrasing accuracy", "value": _fmt(h["heldout_accuracy"])},
            {"metric": "  hallucination", "value": _fmt(h["heldout_hallucination_rate"])},
            {"metric": "  coverage", "value": _fmt(h["heldout_coverage"])},
            {"metric": "  confident halluc.", "value": _fmt(h["heldout_confident_hallucination"])},
            {"metric": "  guarantee reaches", "value": _fmt(h.get("heldout_guaranteed"))},
        ]
    if evaluation.get("guarantee"):
        rows.append({"metric": "guarantee", "value": evaluation["guarantee"]})
    if decision:
        version = (result.get("promotion") or {}).get("version")
        verdict = "PROMOTED" if decision.get("promoted") else "REFUSED"
        rows.append({"metric": "decision", "value": f"{verdict} v{version}"})
        rows.append({"metric": "reason", "value": str(decision.get("reason", ""))})
    return rows


def _fmt(value: Any, spec: str = ".4f") -> str:
    return "-" if value is None else format(float(value), spec)


def validation_markdown(report: dict[str, Any]) -> str:
    verdict = "accepted" if report.get("success") else "**REJECTED**"
    lines = [
        f"# Validation: {verdict}",
        "",
        f"- dataset: `{report.get('uri')}`",
        f"- digest: `{str(report.get('digest', ''))[:16]}`",
        f"- suite hash: `{str(report.get('suite_hash', ''))[:16]}`",
        f"- expectations: {report.get('n_expectations')}, failing: {len(report.get('failures', []))}",
        f"- Data Docs: `{report.get('data_docs')}`",
        "",
        "```text",
        str(report.get("summary", "")),
        "```",
    ]
    return "\n".join(lines)


def summary_markdown(result: dict[str, Any]) -> str:
    ds = result.get("dataset") or {}
    val = result.get("validation") or {}
    model = result.get("model") or {}
    lines = ["# Veracity pipeline run", ""]
    lines += ["## Dataset", f"- URI: `{ds.get('uri')}`", f"- digest: `{ds.get('digest')}`", ""]
    status = val.get("status") or ("accepted" if val.get("success") else "rejected")
    lines += [
        "## Validation",
        f"- status: **{status}**",
        f"- suite hash: `{str(val.get('suite_hash', ''))[:16]}`",
        f"- Data Docs: `{val.get('data_docs')}`",
    ]
    if val.get("summary") and status != "accepted":
        lines += [
            "",
            "```text",
            str(val["summary"]),
            "```",
            "",
            "Stopped before training: nothing was trained or registered.",
        ]
        return "\n".join(lines)
    lines += [
        "",
        "## Model",
        f"- model: `{model.get('model_uri')}`",
        f"- steps: {model.get('steps')}"
        + (
            f" (resumed from step {model['resumed_from_step']})"
            if model.get("resumed_from_step") is not None
            else ""
        ),
        f"- MLflow run: {result.get('mlflow_run_url')}",
        "",
    ]
    lines += ["## Metrics and decision", "", "| metric | value |", "|---|---|"]
    lines += [f"| {r['metric']} | {r['value']} |" for r in summary_rows(result)]
    if result.get("plots"):  # served by `veracity ui` (the MLflow UI) while it runs
        lines += ["", "## Pictures", ""]
        lines += [f"![{name}]({url})" for name, url in result["plots"].items()]
    lines += ["", "## Stages", "", "| stage | seconds | from cache |", "|---|---|---|"]
    lines += [
        f"| {k} | {v['seconds']} | {'yes' if v['cached'] else 'no'} |"
        for k, v in result.get("stages", {}).items()
    ]
    return "\n".join(lines)
