"""The audit trail is tamper-evident: an edited, deleted or rewritten decision is found."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, insert, select, text, update
from typer.testing import CliRunner

from flows.cli import app as veracity
from infra.errors import ExitCode
from registry import promote, rollback, verify_audit
from registry.audit import (
    decisions,
    ensure_schema,
    record_decision,
    row_hash,
    utcnow,
    verify_chain,
)
from tests.registry.conftest import BASE, BETTER, WORSE, Registry


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(veracity, ["registry", *args])
    return result.exit_code, result.output


@pytest.fixture
def four_decisions(registry: Registry) -> list[int]:
    """v1 promoted, v2 promoted, rolled back to v1, v3 refused: decisions #1-#4."""
    v1, v2 = registry.version(BASE), registry.version(BETTER)
    assert promote(v1).promoted and promote(v2).promoted
    rollback()
    assert not promote(registry.version(WORSE)).promoted
    return [v1, v2]


def _execute(statement: object) -> None:
    with ensure_schema().begin() as conn:
        conn.execute(statement)  # type: ignore[call-overload]


def test_an_untouched_trail_verifies(four_decisions: list[int]) -> None:
    check, problems = verify_audit()
    assert (check.chained, check.before_chain, check.broken_at, problems) == (4, 0, None, [])
    code, output = _cli("--verify")
    assert (
        code == 0 and f"audit trail intact: 4 decisions chained, head {check.head[:12]}" in output
    )


def test_an_edited_decision_is_found_and_its_restoration_verifies(
    four_decisions: list[int],
) -> None:
    with ensure_schema().connect() as conn:
        reason = conn.execute(select(decisions.c.reason).where(decisions.c.id == 2)).scalar_one()
    _execute(update(decisions).where(decisions.c.id == 2).values(reason="refused: nothing"))
    assert verify_chain().broken_at == 2
    code, output = _cli("--verify")
    assert code == ExitCode.TAMPERED and "decision #2 does not match its hash" in output
    _execute(update(decisions).where(decisions.c.id == 2).values(reason=reason))
    assert verify_chain().broken_at is None


def test_a_deleted_decision_and_a_removed_hash_are_found(four_decisions: list[int]) -> None:
    _execute(update(decisions).where(decisions.c.id == 3).values(row_hash=None))
    check = verify_chain()
    assert check.broken_at == 3 and "carries no hash" in check.problem
    _execute(delete(decisions).where(decisions.c.id == 2))
    assert verify_chain().broken_at == 3


def test_a_chain_rewritten_whole_disagrees_with_the_version_tags(
    four_decisions: list[int],
) -> None:
    _execute(delete(decisions).where(decisions.c.id == 1))
    with ensure_schema().begin() as conn:  # a forger with the database but not MLflow's tags
        previous = ""
        for row in conn.execute(select(decisions).order_by(decisions.c.id)).mappings().all():
            previous = row_hash(dict(row), previous)
            conn.execute(
                update(decisions).where(decisions.c.id == row["id"]).values(row_hash=previous)
            )
    check, problems = verify_audit()
    assert check.broken_at is None and check.chained == 3
    assert problems and all("which the audit table does not hold" in p for p in problems)
    code, output = _cli("--verify")
    assert code == ExitCode.TAMPERED and "audit trail altered: v" in output


def test_a_trail_from_before_the_chain_keeps_its_rows_and_chains_new_ones(
    registry: Registry,
) -> None:
    engine = ensure_schema()
    old = {
        "decided_at": "2026-01-01 00:00:00",
        "actor": "a",
        "action": "promote",
        "model_name": "veracity-apr",
        "challenger_version": 1,
        "promoted": True,
        "reason": "first champion",
        "metrics": "{}",
        "statistic": "{}",
        "policy": "{}",
    }
    # the table as written before the chain: no row_hash column
    create = (
        "CREATE TABLE promotion_decisions (id INTEGER PRIMARY KEY,"
        " decided_at DATETIME NOT NULL, actor VARCHAR(255) NOT NULL, action VARCHAR(32) NOT NULL,"
        " model_name VARCHAR(255) NOT NULL, challenger_version INTEGER,"
        " champion_version_before INTEGER, champion_version_after INTEGER,"
        " promoted BOOLEAN NOT NULL, reason TEXT NOT NULL,"
        " metrics JSON NOT NULL, statistic JSON NOT NULL, policy JSON NOT NULL)"
    )
    columns, values = ", ".join(old), ", ".join(":" + k for k in old)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE promotion_decisions"))
        conn.execute(text(create))
        conn.execute(text(f"INSERT INTO promotion_decisions ({columns}) VALUES ({values})"), old)
    from registry import audit

    audit._SCHEMA_READY.clear()  # as a new process would find it
    row = {k: v for k, v in old.items() if k != "decided_at"}
    row |= {"metrics": {}, "statistic": {}, "policy": {}, "reason": "refused", "promoted": False}
    record_decision(row)
    check = verify_chain()
    assert (check.before_chain, check.chained, check.broken_at) == (1, 1, None)
    with engine.begin() as conn:  # a hash removed later is not an old row
        conn.execute(insert(decisions).values(**row, decided_at=utcnow()))
    assert verify_chain().broken_at == 3
