"""The promotion gate on a real MLflow registry and a real audit database (SQLite)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from mlflow import MlflowClient
from typer.testing import CliRunner

from flows.cli import app as veracity
from infra.settings import get_settings
from registry import (
    MODEL_NAME,
    PromotionError,
    PromotionPolicy,
    audit,
    load_evaluation,
    promote,
    promotion,
    recent_decisions,
    register_challenger,
    registry_table,
    rollback,
)
from tests.registry.conftest import Registry, make_report

BASE = make_report(range(850), range(850, 900))  # accuracy 0.85, hallucination 0.05


def _client() -> MlflowClient:
    uri = get_settings().tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _aliases() -> dict[str, int]:
    return {k: int(v) for k, v in _client().get_registered_model(MODEL_NAME).aliases.items()}


def _tags(version: int) -> dict[str, str]:
    return dict(_client().get_model_version(MODEL_NAME, str(version)).tags)


def _with_champion(registry: Registry, report: dict[str, Any] = BASE) -> int:
    v1 = registry.version(report)
    assert promote(v1, actor="tester").promoted
    return v1


def test_first_model_promoted_on_floors_alone(registry: Registry) -> None:
    v1 = registry.version(BASE)
    assert _aliases() == {"challenger": v1}
    decision = promote(v1, actor="alice@ci")
    assert decision.promoted and decision.champion_version_before is None
    assert "first champion" in decision.reason and decision.statistic == {}
    assert _aliases() == {"champion": v1}  # challenger alias removed from the promoted version
    tags = _tags(v1)
    assert tags["gate.decision"] == "promoted" and tags["gate.decision_id"] == str(decision.id)
    assert tags["eval_accuracy"] == "0.85" and tags["eval_digest"] == "d-main"
    [row] = recent_decisions()
    assert row["promoted"] and row["actor"] == "alice@ci" and row["challenger_version"] == v1
    assert row["metrics"]["challenger"]["accuracy"] == 0.85
    assert row["policy"]["min_accuracy"] == 0.80


@pytest.mark.parametrize(
    ("report", "needle"),
    [
        (make_report(range(780), range(780, 800)), "accuracy 0.7800 < floor"),
        (make_report(range(850), range(850, 960)), "hallucination 0.1100 > ceiling"),
        (make_report(range(850), range(850, 900), latency=501.0), "p95 latency 501.0 ms over"),
    ],
)
def test_floors_failing_refused(registry: Registry, report: dict[str, Any], needle: str) -> None:
    v1 = registry.version(report)
    decision = promote(v1)
    assert not decision.promoted and needle in decision.reason
    assert "champion" not in _aliases()
    assert _tags(v1)["gate.decision"] == "refused" and needle in _tags(v1)["gate.reason"]
    assert recent_decisions()[0]["reason"] == decision.reason


def test_better_model_promoted_and_aliases_move(registry: Registry) -> None:
    v1 = _with_champion(registry)
    v2 = registry.version(make_report(range(900), range(900, 940)))
    decision = promote(v2)
    assert decision.promoted, decision.reason
    assert _aliases() == {"champion": v2, "previous-champion": v1}
    stat = decision.statistic
    assert stat["ci_low"] > 0 and stat["mcnemar_wins"] == 50 and stat["mcnemar_losses"] == 0
    assert stat["mcnemar_p"] < 1e-10
    row = recent_decisions(1)[0]
    assert row["champion_version_before"] == v1 and row["champion_version_after"] == v2
    assert row["metrics"]["champion"]["accuracy"] == 0.85
    assert row["statistic"]["ci_low"] == stat["ci_low"]
    assert float(_tags(v2)["gate.ci_low"]) == pytest.approx(stat["ci_low"])


def test_worse_model_refused_with_reason(registry: Registry) -> None:
    v1 = _with_champion(registry)
    v2 = registry.version(make_report(range(820), range(820, 860)))
    decision = promote(v2)
    assert not decision.promoted
    assert "accuracy not better" in decision.reason and f"champion v{v1}" not in decision.reason
    assert decision.statistic["ci_high"] < 0
    assert _aliases() == {"champion": v1, "challenger": v2}
    assert _tags(v2)["gate.decision"] == "refused"


def test_tie_refused(registry: Registry) -> None:
    _with_champion(registry)
    same = registry.version(BASE)
    swapped = registry.version(make_report(set(range(20, 870)), range(870, 920)))  # 20 ↔ 20
    for version in (same, swapped):
        decision = promote(version)
        assert not decision.promoted and "accuracy not better" in decision.reason
        assert decision.statistic["accuracy_diff"] == 0.0 and decision.statistic["ci_low"] <= 0


def test_hallucination_worse_by_more_than_half_a_point_refused(registry: Registry) -> None:
    v1 = _with_champion(registry)
    worse = registry.version(make_report(range(900), range(900, 960)))  # 5.0% -> 6.0%
    decision = promote(worse)
    assert not decision.promoted and "hallucination worse by 1.00 points" in decision.reason
    assert decision.statistic["ci_low"] > 0  # more accurate, still refused
    within = registry.version(make_report(range(900), range(900, 954)))  # +0.4 point
    assert promote(within).promoted
    assert _aliases()["previous-champion"] == v1


def test_latency_over_budget_refused(registry: Registry) -> None:
    _with_champion(registry)
    slow = registry.version(make_report(range(900), range(900, 940), latency=650.0))
    decision = promote(slow)
    assert not decision.promoted and "p95 latency 650.0 ms over budget" in decision.reason
    assert promote(slow, PromotionPolicy(latency_p95_budget_ms=700.0)).promoted


def test_champion_on_another_digest_is_reevaluated(registry: Registry) -> None:
    v1 = _with_champion(registry, make_report(range(850), range(850, 900), digest="d-old"))
    v2 = registry.version(make_report(range(900), range(900, 940), digest="d-new"))
    refused = promote(v2)
    assert not refused.promoted and "no evaluator" in refused.reason
    calls: list[tuple[str, str]] = []

    def evaluate(model_uri: str, dataset_uri: str) -> dict[str, Any]:
        calls.append((model_uri, dataset_uri))
        return make_report(range(860), range(860, 900), digest="d-new")

    decision = promote(v2, evaluate=evaluate)
    assert decision.promoted, decision.reason
    assert calls == [(f"models:/{MODEL_NAME}/{v1}", "/data/d-new")]
    assert decision.metrics["champion"]["dataset_digest"] == "d-new"
    assert decision.metrics["champion"]["accuracy"] == 0.86
    recorded = load_evaluation(v1, "d-new")
    assert recorded is not None and recorded["accuracy"] == 0.86
    assert load_evaluation(v1, "d-old") is not None and _tags(v1)["eval_digest"] == "d-new"


def test_rollback_restores_previous_champion(registry: Registry) -> None:
    v1 = _with_champion(registry)
    v2 = registry.version(make_report(range(900), range(900, 940)))
    assert promote(v2).promoted
    decision = rollback(actor="oncall")
    assert decision.action == "rollback" and decision.champion_version_after == v1
    assert _aliases() == {"champion": v1}
    assert _tags(v2)["gate.decision"] == "rolled-back"
    row = recent_decisions(1)[0]
    assert (row["action"], row["champion_version_before"], row["actor"]) == (
        "rollback",
        v2,
        "oncall",
    )
    with pytest.raises(PromotionError, match="no previous-champion"):
        rollback()
    assert len(recent_decisions()) == 3


def test_model_from_rejected_dataset_refused(registry: Registry) -> None:
    uri, run_id = registry.log_model()
    with pytest.raises(PromotionError, match="validation_status is 'rejected'"):
        register_challenger(uri, run_id, {"validation_status": "rejected"})
    # Registered behind the gate's back: promote refuses it, and the refusal is audited.
    client = _client()
    client.create_registered_model(MODEL_NAME)
    mv = client.create_model_version(
        MODEL_NAME, uri, run_id, tags={"validation_status": "rejected"}
    )
    decision = promote(int(mv.version))
    assert not decision.promoted and "validation_status is 'rejected'" in decision.reason
    assert recent_decisions()[0]["id"] == decision.id


def _cli() -> typer.Typer:
    return veracity


def test_cli_table_and_one_line_errors(registry: Registry) -> None:
    runner, app = CliRunner(), _cli()
    v1 = registry.version(BASE)
    result = runner.invoke(app, ["promote", str(v1)])
    assert result.exit_code == 0 and "PROMOTED" in result.output
    v2 = registry.version(make_report(range(820), range(820, 860)))
    result = runner.invoke(app, ["promote", str(v2)])
    assert result.exit_code == 3 and "REFUSED" in result.output and "CI [" in result.output
    result = runner.invoke(app, ["promote", "99"])
    assert result.exit_code == 2 and "unknown version 99" in result.output
    assert "Traceback" not in result.output and result.exception is not None
    decided = len(audit.list_decisions())
    result = runner.invoke(app, ["promote", str(v2), "--eval-dataset", "/no/such/dataset"])
    assert result.exit_code == 2 and "no dataset at /no/such/dataset" in result.output
    assert len(audit.list_decisions()) == decided  # a typo is not a decision
    result = runner.invoke(app, ["rollback"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    result = runner.invoke(app, ["registry"])
    assert result.exit_code == 0, result.output
    assert "champion" in result.output and "challenger" in result.output
    assert "recent decisions:" in result.output
    rows = registry_table()
    assert [r["version"] for r in rows] == [v1, v2]
    assert rows[0]["aliases"] == ["champion"] and rows[1]["decision"] == "refused"
    result = runner.invoke(app, ["registry", "--json", "--decisions", "0"])
    assert result.exit_code == 0, result.output
    export = json.loads(result.output)
    assert [v["version"] for v in export["versions"]] == [v1, v2]
    assert [d["id"] for d in export["decisions"]] == [d["id"] for d in audit.list_decisions()]
    refused = export["decisions"][0]
    assert not refused["promoted"] and refused["statistic"]["n_paired"] > 0
    assert refused["policy"] and refused["metrics"] and "T" in refused["decided_at"]
    result = runner.invoke(app, ["registry", "--decisions", "1"])
    assert result.output.count(" refused: ") + result.output.count(" promoted: ") == 1
    result = runner.invoke(app, ["registry", "--decisions", "-1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = runner.invoke(app, ["serve", "--alias", "no-such-alias"])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "no-such-alias" in result.output and "Traceback" not in result.output


def test_lost_compare_and_set_is_still_recorded(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = registry.version(BASE)
    monkeypatch.setattr(promotion, "_commit", lambda *args, **kwargs: False)  # always raced
    decision = promote(v1)
    assert not decision.promoted and decision.reason.startswith("champion changed concurrently")
    assert recent_decisions()[0]["id"] == decision.id
    assert "champion" not in _aliases()


def test_failed_alias_move_rolls_back_the_pointer_and_is_recorded(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.exceptions import MlflowException

    v1 = _with_champion(registry)
    v2 = registry.version(make_report(range(900), range(900, 940)))
    real = promotion._move_aliases
    calls: list[int | None] = []

    def flaky(c: Any, name: str, new: int | None, previous: int | None) -> None:
        calls.append(new)
        if len(calls) == 1:
            raise MlflowException("registry unavailable")
        real(c, name, new, previous)

    monkeypatch.setattr(promotion, "_move_aliases", flaky)
    decision = promote(v2)
    assert not decision.promoted and "moving the aliases failed" in decision.reason
    assert calls == [v2, v1]  # tried, then put back
    assert _aliases() == {"champion": v1, "challenger": v2}
    pointer = audit.read_pointer(MODEL_NAME)
    assert pointer is not None and pointer.version == v1
    assert recent_decisions()[0]["id"] == decision.id


def test_unpaired_reports_are_refused_and_audited(registry: Registry) -> None:
    _with_champion(registry)
    v2 = registry.version(make_report(range(1100), range(1100, 1140), n=1200))
    decision = promote(v2)
    assert not decision.promoted and "not paired" in decision.reason
    assert recent_decisions()[0]["id"] == decision.id
