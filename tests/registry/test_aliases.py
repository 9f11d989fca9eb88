"""The champion is what the gate decided: an alias moved directly in MLflow is found and refused."""

from __future__ import annotations

import threading

import pytest
from typer.testing import CliRunner

from flows.cli import app as veracity
from infra.errors import ExitCode
from registry import (
    CHAMPION,
    MODEL_NAME,
    PREVIOUS,
    UngatedAlias,
    audit,
    promote,
    recent_decisions,
    require_gated,
    rollback,
    verify_audit,
)
from registry.aliases import UNGATED_USE, alias_problems, expected_aliases
from registry.client import client
from tests.registry.conftest import BASE, BETTER, WORSE, Registry


@pytest.fixture
def refused_v3(registry: Registry) -> list[int]:
    """v1 promoted, v2 promoted, v3 refused: champion v2, previous v1."""
    v1, v2, v3 = (registry.version(r) for r in (BASE, BETTER, WORSE))
    assert promote(v1).promoted and promote(v2).promoted and not promote(v3).promoted
    return [v1, v2, v3]


def test_the_gate_s_aliases_replay_from_the_audit_trail(refused_v3: list[int]) -> None:
    v1, v2, _ = refused_v3
    assert expected_aliases() == {CHAMPION: v2, PREVIOUS: v1}
    assert alias_problems() == {}
    rollback()
    assert expected_aliases() == {CHAMPION: v1, PREVIOUS: None} and alias_problems() == {}
    require_gated(CHAMPION)


def test_a_champion_moved_outside_the_gate_fails_verify_serve_and_the_gate(
    refused_v3: list[int],
) -> None:
    _, v2, v3 = refused_v3
    client().set_registered_model_alias(MODEL_NAME, CHAMPION, str(v3))  # what the UI allows
    _, problems = verify_audit()
    assert problems == [
        f"@champion is v{v3} but the gate's decisions left it v{v2}: it was moved outside the gate"
    ]
    runner = CliRunner()
    result = runner.invoke(veracity, ["registry", "--verify"])
    assert result.exit_code == ExitCode.TAMPERED and "moved outside the gate" in result.output
    result = runner.invoke(veracity, ["serve", "--port", "5999"])
    assert result.exit_code == ExitCode.TAMPERED and result.output.count("\n") == 1
    assert "--allow-ungated" in result.output
    result = runner.invoke(veracity, ["evaluate", f"models:/{MODEL_NAME}@champion", "/nowhere"])
    assert result.exit_code == ExitCode.TAMPERED, result.output
    with pytest.raises(UngatedAlias):
        promote(v3)
    with pytest.raises(UngatedAlias):
        rollback()


def test_allow_ungated_is_recorded_and_keeps_the_trail_verifiable(refused_v3: list[int]) -> None:
    v1, v2, _ = refused_v3
    client().delete_registered_model_alias(MODEL_NAME, PREVIOUS)
    result = CliRunner().invoke(
        veracity,
        ["evaluate", f"models:/{MODEL_NAME}@previous-champion", "/nowhere", "--allow-ungated"],
    )
    # the forensic use is recorded before the (here: missing) alias is resolved
    assert "audit decision #4" in result.output and result.exit_code == ExitCode.USAGE
    row = recent_decisions(1)[0]
    assert row["action"] == UNGATED_USE and "previous-champion is unset" in row["reason"]
    check, problems = verify_audit()
    assert check.broken_at is None and check.chained == 4
    assert problems == [
        f"@previous-champion is unset but the gate's decisions left it v{v1}: "
        "it was moved outside the gate"
    ]
    client().set_registered_model_alias(MODEL_NAME, PREVIOUS, str(v1))  # put back: clean again
    assert verify_audit()[1] == [] and expected_aliases()[CHAMPION] == v2


def test_a_promotion_in_flight_is_not_taken_for_tampering(any_registry: Registry) -> None:
    """The window between MLflow moving the aliases and the audit row committing.

    On PostgreSQL a reader does not wait for the gate's transaction (CI once refused a concurrent
    promotion as tampering there); on SQLite every transaction is serialised anyway."""
    v1, v2, v3 = (any_registry.version(r) for r in (BASE, BETTER, WORSE))
    assert promote(v1).promoted and promote(v2).promoted
    seen: list[BaseException | None] = []

    def check() -> None:
        try:
            require_gated(CHAMPION)
            seen.append(None)
        except BaseException as exc:
            seen.append(exc)

    reader = threading.Thread(target=check)
    with audit.locked_pointer(MODEL_NAME) as (conn, _):  # what the gate's commit step holds
        assert audit.compare_and_set(conn, MODEL_NAME, v2, v3, v2)
        client().set_registered_model_alias(MODEL_NAME, CHAMPION, str(v3))
        client().set_registered_model_alias(MODEL_NAME, PREVIOUS, str(v2))
        reader.start()
        reader.join(timeout=2.0)
        assert reader.is_alive(), seen  # waits for the promotion rather than refusing it
        row = {"action": "promote", "model_name": MODEL_NAME, "challenger_version": v3}
        row |= {"champion_version_before": v2, "champion_version_after": v3, "promoted": True}
        row |= {"actor": "test", "reason": "promoted", "metrics": {}, "statistic": {}}
        audit.insert_decision(conn, {**row, "policy": {}})
    reader.join(timeout=60)
    assert seen == [None]
    assert alias_problems() == {} and expected_aliases() == {CHAMPION: v3, PREVIOUS: v2}
