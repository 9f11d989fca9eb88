"""What a person sees after ``veracity run``: the MLflow UI (``veracity ui``) in a real headless
browser, and the Prefect artifacts of the run read back through the Prefect API.

One small pipeline run (tiny model, one domain) in a subprocess with its own ``PREFECT_HOME``
and Prefect's temporary server, as ``veracity run`` would. The tiny model fails the gate's
default floors, so the test then promotes the same version through the gate with a permissive
policy (audited like any decision) to have a ``champion`` to look at.

The browser is Debian's ``/usr/bin/chromium`` driven by Playwright; nothing here downloads a
browser. Screenshots land in ``tests/artifacts/e2e/`` (git-ignored). The run, the browser and the
UI server are the fixtures of ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import FinishedRun

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "tests" / "artifacts" / "e2e"
MODEL_NAME = "veracity-apr"


def _table(artifact: dict[str, Any]) -> list[dict[str, Any]]:
    assert artifact["type"] == "table", artifact
    data = artifact["data"]
    rows = json.loads(data) if isinstance(data, str) else data
    assert isinstance(rows, list) and rows, artifact
    return rows


def _render(markdown: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(markdown)


def js_number(value: float) -> str:
    """How the MLflow UI (JavaScript ``String(x)``) prints a metric."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


# ------------------------------------------------------------------ Prefect artifacts (API)


@pytest.mark.slow
def test_prefect_artifacts_are_readable_markdown_and_tables(
    finished_run: FinishedRun, prefect_artifacts: dict[str, dict[str, Any]]
) -> None:
    arts = prefect_artifacts
    expected = {
        "veracity-validation": "markdown",
        "veracity-evaluation": "table",
        "veracity-registry": "table",
        "veracity-run-summary": "markdown",
        "veracity-run-metrics": "table",
        "veracity-run-stages": "table",
    }
    assert {k: arts[k]["type"] for k in expected if k in arts} == expected, sorted(arts)
    assert "veracity-validation-failures" not in arts  # the dataset is clean
    headline = finished_run.result["evaluation"]["headline"]
    dataset = finished_run.result["dataset"]

    summary = arts["veracity-run-summary"]["data"]
    for heading in (
        "# Veracity pipeline run",
        "## Dataset",
        "## Validation",
        "## Model",
        "## Metrics and decision",
        "## Stages",
    ):
        assert f"\n{heading}\n" in f"\n{summary}\n", heading
    assert dataset["digest"] in summary and "- status: **accepted**" in summary
    assert f"| accuracy | {headline['accuracy']:.4f} |" in summary
    assert f"| decision | REFUSED v{finished_run.version} |" in summary
    html = _render(summary)
    assert "<h1>Veracity pipeline run</h1>" in html and "<h2>Metrics and decision</h2>" in html
    assert html.count("<table>") == 2 and "<td>accuracy</td>" in html
    assert "<td>train</td>" in html and "|" not in re.sub(r"<pre>.*?</pre>", "", html, flags=re.S)

    validation = arts["veracity-validation"]["data"]
    assert validation.startswith("# Validation: accepted")
    assert "<h1>Validation: accepted</h1>" in _render(validation)

    metrics = {r["metric"]: r["value"] for r in _table(arts["veracity-run-metrics"])}
    assert metrics["accuracy"] == f"{headline['accuracy']:.4f}"
    assert metrics["hallucination rate"] == f"{headline['hallucination_rate']:.4f}"
    assert metrics["decision"] == f"REFUSED v{finished_run.version}"
    assert "floors failed" in metrics["reason"]

    stages = _table(arts["veracity-run-stages"])
    assert [r["stage"] for r in stages] == ["generate", "validate", "train", "evaluate", "promote"]
    assert all(r["cached"] is False and float(r["seconds"]) >= 0 for r in stages), stages

    evaluation = {r["metric"]: r["value"] for r in _table(arts["veracity-evaluation"])}
    assert evaluation["accuracy"] == pytest.approx(headline["accuracy"], abs=1e-6)
    assert evaluation["hallucination_rate"] == pytest.approx(
        headline["hallucination_rate"], abs=1e-6
    )

    registry = _table(arts["veracity-registry"])
    assert [int(r["version"]) for r in registry] == [finished_run.version], registry


# ------------------------------------------------------------------ the MLflow UI in a browser


def _ui_state(run: FinishedRun) -> str:
    """localStorage the SPA reads on start: the classic 'Model training' view, the assistant
    panel closed, the pipeline run expanded, and metric columns in the runs table."""
    exp = run.experiment_id
    page_state = {
        "searchFilter": "",
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
        "startTime": "ALL",
        "lifecycleFilter": "Active",
        "datasetsFilter": [],
        "modelVersionFilter": "All Runs",
        "selectedColumns": [
            "attributes.`Dataset`",
            "metrics.`steps`",
            "metrics.`test_accuracy`",
            "metrics.`test_hallucination_rate`",
        ],
        "columnOrder": [],
        "columnWidths": {},
        "runsExpanded": {run.parent_run_id: True},
        "runsPinned": [],
        "runsHidden": [],
        "runsVisibilityMap": {},
        "runsHiddenMode": "FIRST_10_RUNS",
        "viewMaximized": False,
        "runListHidden": False,
        "isAccordionReordered": False,
        "useGroupedValuesInCharts": True,
        "hideEmptyCharts": True,
        "groupBy": None,
        "groupsExpanded": {},
        "autoRefreshEnabled": False,
        "globalLineChartConfig": {
            "xAxisKey": "step",
            "lineSmoothness": 0,
            "selectedXAxisMetricKey": "",
        },
    }
    storage = {
        "mlflow.workflowType_v1": json.dumps("machine_learning"),
        "mlflow.assistant.panelOpen_v1": "false",
        "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
        f"MLflowLocalStorage-1.1-ExperimentView-{exp}-expandRows": "true",
        f'MLflowLocalStorage-1.1-ExperimentPage-["{exp}"]-ReactComponentState': json.dumps(
            page_state
        ),
    }
    return (
        f"(() => {{ const s = {json.dumps(storage)}; "
        "for (const k in s) window.localStorage.setItem(k, s[k]); })();"
    )


def _open(page: Any, url: str) -> None:
    page.goto(url)
    # The SPA polls (traces, auto-refresh), so network idle may never come: wait a little for
    # it, then for the text each check names.
    with contextlib.suppress(Exception):
        page.wait_for_load_state("networkidle", timeout=5_000)


@pytest.mark.slow
def test_mlflow_ui_shows_runs_metrics_plots_and_champion(
    chromium: Any,
    finished_run: FinishedRun,
    mlflow_ui: str,
    prefect_artifacts: dict[str, dict[str, Any]],
) -> None:
    from playwright.sync_api import expect

    run = finished_run
    headline = run.result["evaluation"]["headline"]
    accuracy, hallucination = (
        js_number(headline["accuracy"]),
        js_number(headline["hallucination_rate"]),
    )
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(60_000)
    context.add_init_script(_ui_state(run))
    server_errors: list[str] = []
    page = context.new_page()
    page.on(
        "response",
        lambda r: server_errors.append(f"{r.status} {r.url}") if r.status >= 500 else None,
    )
    try:
        # 1. The experiment's runs: the pipeline run with its train run, metrics as columns.
        _open(page, f"{mlflow_ui}/#/experiments/{run.experiment_id}/runs")
        expect(page.get_by_role("link", name="pipeline", exact=True)).to_be_visible()
        expect(page.get_by_role("link", name="train", exact=True)).to_be_visible()
        for column in ("test_accuracy", "test_hallucination_rate", "steps"):
            expect(page.get_by_text(column, exact=True).first).to_be_visible()
        expect(page.get_by_text(accuracy, exact=True).first).to_be_attached()
        expect(page.get_by_text(hallucination, exact=True).first).to_be_attached()
        expect(page.get_by_text(re.compile(r"ds-seed11-n100-medical")).first).to_be_visible()
        page.screenshot(path=str(SHOTS / "mlflow-runs.png"))

        # 2. The train run: its metrics.
        _open(page, f"{mlflow_ui}/#/experiments/{run.experiment_id}/runs/{run.run_id}")
        expect(page.get_by_text(re.compile(r"^Metrics \(\d+\)$"))).to_be_visible()
        for name, value in (
            ("test_accuracy", accuracy),
            ("test_hallucination_rate", hallucination),
            ("steps", "10"),
        ):
            row = page.get_by_role("row").filter(has=page.get_by_text(name, exact=True))
            expect(row.first).to_contain_text(value)
        page.screenshot(path=str(SHOTS / "mlflow-run-metrics.png"))

        # 3. Its artifacts: the evaluation plots render as images.
        _open(page, f"{mlflow_ui}/#/experiments/{run.experiment_id}/runs/{run.run_id}/artifacts")
        page.get_by_text("eval", exact=True).first.click()
        expect(page.get_by_text("test-routed_by_kind.png", exact=True)).to_be_visible()
        page.get_by_text("test-reliability.png", exact=True).click()
        image = page.locator("img[src^='blob:']").first
        expect(image).to_be_visible()
        page.wait_for_function(
            "() => Array.from(document.images).some(i => i.src.startsWith('blob:')"
            " && i.complete && i.naturalWidth > 100)"
        )
        page.screenshot(path=str(SHOTS / "mlflow-run-plot.png"))

        # 4. The registered model with its champion alias.
        _open(page, f"{mlflow_ui}/#/models/{MODEL_NAME}")
        expect(page.get_by_text(f"Version {run.version}", exact=True)).to_be_visible()
        alias = page.get_by_text(re.compile(r"^@\s*champion$"))
        expect(alias.first).to_be_visible()
        expect(page.get_by_text("first champion: absolute floors pass").first).to_be_attached()
        page.screenshot(path=str(SHOTS / "mlflow-model-champion.png"))

        # 5. The run summary artifact as a person reads it (rendered markdown, one page).
        html = _render(prefect_artifacts["veracity-run-summary"]["data"])
        style = (
            "body{font-family:sans-serif;margin:24px} table{border-collapse:collapse}"
            " th,td{border:1px solid #bbb;padding:3px 10px;text-align:left}"
        )
        page.set_content(f"<html><head><style>{style}</style></head><body>{html}</body></html>")
        expect(page.get_by_role("heading", name="Veracity pipeline run")).to_be_visible()
        expect(page.get_by_role("cell", name="accuracy", exact=True)).to_be_visible()
        page.screenshot(path=str(SHOTS / "prefect-run-summary.png"), full_page=True)
    except Exception:
        page.screenshot(path=str(SHOTS / "failure.png"))
        raise
    finally:
        context.close()
    assert not server_errors, server_errors
    for name in ("mlflow-runs", "mlflow-run-metrics", "mlflow-run-plot", "mlflow-model-champion"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000, name
