"""The champion is what the gate decided: the gated aliases checked against the audit trail.

MLflow lets anyone with write access to the store move an alias. The audit trail (hash-chained,
:mod:`registry.audit`) says where the gate left ``champion`` and ``previous-champion``; replaying
its decisions gives the aliases a reader may trust, and any difference is a move made outside
the gate. ``veracity registry --verify`` reports it; serving, evaluating an alias and the gate
itself refuse such an alias, unless a person asks to use it anyway for forensics, which is
recorded in the audit trail.
"""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException
from sqlalchemy import Connection

from infra.errors import TamperedError
from registry import audit
from registry.client import CHAMPION, MODEL_NAME, PREVIOUS, client

GATED = (CHAMPION, PREVIOUS)
UNGATED_USE = "ungated-use"  # an audit row's action: a person used an ungated alias anyway


class UngatedAlias(TamperedError):
    """A gated alias points where no gate decision put it."""


def expected_aliases(
    model_name: str = MODEL_NAME, conn: Connection | None = None
) -> dict[str, int | None]:
    """Where the gate's decisions, replayed in order, left each gated alias."""
    champion: int | None = None
    previous: int | None = None
    for d in sorted(audit.list_decisions(model_name, conn=conn), key=lambda d: int(d["id"])):
        if d["action"] == "promote" and d["promoted"]:
            champion, previous = d["champion_version_after"], d["champion_version_before"]
        elif d["action"] == "rollback":
            champion, previous = d["champion_version_after"], None
    return {CHAMPION: champion, PREVIOUS: previous}


def actual_aliases(model_name: str = MODEL_NAME) -> dict[str, int | None]:
    """Where MLflow's gated aliases point now (``None``: unset, or no such model)."""
    try:
        held = client().get_registered_model(model_name).aliases
    except MlflowException:
        held = {}
    return {alias: int(held[alias]) if alias in held else None for alias in GATED}


def _v(version: int | None) -> str:
    return "unset" if version is None else f"v{version}"


def alias_problems(model_name: str = MODEL_NAME) -> dict[str, str]:
    """Each gated alias that differs from the audit trail, with what differs.

    A promotion moves the aliases in MLflow (committed at once) and then records its decision in
    the audit transaction that holds the champion pointer locked; a reader between the two sees a
    difference that is not one. So a difference is confirmed only once that lock is free, when
    every promotion in flight has committed (or rolled back and put the aliases back)."""
    if not _differences(model_name):
        return {}
    with audit.locked_pointer(model_name, *expected_aliases(model_name).values()) as (conn, _):
        return _differences(model_name, conn)


def _differences(model_name: str, conn: Connection | None = None) -> dict[str, str]:
    want, have = expected_aliases(model_name, conn), actual_aliases(model_name)
    return {
        alias: f"@{alias} is {_v(have[alias])} but the gate's decisions left it {_v(want[alias])}: "
        "it was moved outside the gate"
        for alias in GATED
        if have[alias] != want[alias]
    }


def require_gated(alias: str, model_name: str = MODEL_NAME) -> None:
    """Refuse an alias the gate did not set (``UngatedAlias``, exit 4); others pass."""
    problem = alias_problems(model_name).get(alias)
    if problem:
        raise UngatedAlias(
            f"{problem} (see `veracity registry --verify`; --allow-ungated uses it anyway, "
            "recorded in the audit trail)"
        )


def record_ungated_use(alias: str, purpose: str, model_name: str = MODEL_NAME) -> int | None:
    """Record in the audit trail that a person used ``alias`` although the gate did not set it.

    Returns the audit row's id, or ``None`` when the alias is gated (nothing to record)."""
    problem = alias_problems(model_name).get(alias)
    if problem is None:
        return None
    version, expected = actual_aliases(model_name)[alias], expected_aliases(model_name)[CHAMPION]
    row: dict[str, Any] = {
        "decided_at": audit.utcnow(),
        "actor": audit.default_actor(),
        "action": UNGATED_USE,
        "model_name": model_name,
        "challenger_version": version,
        "champion_version_before": expected,
        "champion_version_after": expected,
        "promoted": False,
        "reason": f"{purpose} with --allow-ungated: {problem}",
        "metrics": {},
        "statistic": {},
        "policy": {},
    }
    decision_id, _ = audit.record_decision(row)
    return decision_id
