"""The promotion gate: challenger vs champion on the same frozen evaluation set, then aliases.

Aliases on ``veracity-apr``: ``challenger`` (newest registered version), ``champion`` (moved
only by :func:`promote` / :func:`rollback`), ``previous-champion``. Every decision is written to
the audit table and as ``gate.*`` tags on the version. The champion moves by compare-and-set on
the audit database's champion pointer, so concurrent promotions serialise (see ``audit``).

The registry never evaluates: reports are read from and recorded to the version's run by
``registry.evaluations``; when the champion lacks a report on the challenger's dataset digest,
the caller's ``evaluate(model_uri, dataset_uri)`` is used. The read-only views of what the gate
decided are in ``registry.views``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from registry import audit
from registry.aliases import require_gated
from registry.audit import default_actor
from registry.client import CHALLENGER, CHAMPION, MODEL_NAME, PREVIOUS, client, model_version
from registry.evaluations import load_evaluation, record_evaluation
from registry.gate import (
    EvalReportDict,
    PromotionError,
    PromotionPolicy,
    Verdict,
    check_report,
    judge,
    summary,
)

MAX_CAS_ATTEMPTS = 5

Evaluate = Callable[[str, str], Any]  # (model_uri, dataset_uri) -> dict or obj with to_dict()


@dataclass
class PromotionDecision:
    model_name: str
    action: Literal["promote", "rollback"]
    challenger_version: int | None
    champion_version_before: int | None
    champion_version_after: int | None
    promoted: bool
    reason: str
    actor: str
    metrics: dict[str, Any] = field(default_factory=dict)
    statistic: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    decided_at: str | None = None
    audit_hash: str | None = None  # the audit row's place in the tamper-evident chain


# ---------------------------------------------------------------- MLflow helpers


def _alias_version(c: MlflowClient, name: str, alias: str) -> int | None:
    try:
        return int(c.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def register_challenger(
    model_uri: str, run_id: str | None, tags: Mapping[str, Any], model_name: str = MODEL_NAME
) -> int:
    """Register ``model_uri`` as a new version with alias ``challenger``; returns the version.

    Refused (``PromotionError``) unless ``tags['validation_status'] == 'accepted'``: a model
    trained on a dataset that failed validation never enters the registry.
    """
    status = str(tags.get("validation_status", "missing"))
    if status != "accepted":
        raise PromotionError(
            f"refusing to register {model_uri}: dataset validation_status is "
            f"{status!r}, not 'accepted'"
        )
    c = client()
    try:
        c.create_registered_model(model_name)
    except MlflowException as exc:
        if "ALREADY_EXISTS" not in str(exc.error_code):
            raise
    match = re.fullmatch(r"models:/(m-[0-9a-f]+)", model_uri)
    mv = c.create_model_version(
        model_name,
        source=model_uri,
        run_id=run_id,
        tags={k: str(v) for k, v in tags.items()},
        model_id=match.group(1) if match else None,
    )
    c.set_registered_model_alias(model_name, CHALLENGER, str(mv.version))
    return int(mv.version)


# ---------------------------------------------------------------- the gate


def _run_evaluate(evaluate: Evaluate, model_uri: str, dataset_uri: str) -> Any:
    """The evaluator's report, or the reason it failed (a refusal, audited like any other)."""
    try:
        return evaluate(model_uri, dataset_uri)
    except Exception as exc:  # the evaluator belongs to another layer; any failure refuses
        return f"evaluating {model_uri} on {dataset_uri} failed: {type(exc).__name__}: {exc}"


def _challenger_report(
    version: int, model_name: str, evaluate: Evaluate | None, eval_dataset: str | None
) -> EvalReportDict | str:
    report = load_evaluation(version, model_name=model_name)
    if eval_dataset is not None and (report is None or report["dataset_uri"] != eval_dataset):
        if evaluate is None:
            return f"challenger has no evaluation on {eval_dataset} and no evaluator was given"
        got = _run_evaluate(evaluate, f"models:/{model_name}/{version}", eval_dataset)
        if isinstance(got, str):
            return got
        report = record_evaluation(version, got, model_name)
    return report if report is not None else "challenger has no recorded evaluation"


def _decide(
    version: int,
    champion: int | None,
    policy: PromotionPolicy,
    model_name: str,
    evaluate: Evaluate | None,
    eval_dataset: str | None,
) -> Verdict:
    status = model_version(client(), model_name, version).tags.get("validation_status", "missing")
    if status != "accepted":
        return Verdict(False, f"dataset validation_status is {status!r}, not 'accepted'")
    if champion == version:
        return Verdict(False, f"version {version} is already the champion")
    mine = _challenger_report(version, model_name, evaluate, eval_dataset)
    if isinstance(mine, str):
        return Verdict(False, mine)
    theirs = None if champion is None else _champion_report(champion, mine, model_name, evaluate)
    if isinstance(theirs, str):
        return Verdict(False, theirs, {"challenger": summary(mine)})
    return judge(mine, theirs, policy, f"champion v{champion}")


def _champion_report(
    champion: int, mine: EvalReportDict, model_name: str, evaluate: Evaluate | None
) -> EvalReportDict | str:
    """The champion's report on the challenger's digest, re-evaluating it when needed."""
    digest = mine["dataset_digest"]
    theirs = load_evaluation(champion, digest, model_name)
    if theirs is not None:
        return theirs
    if evaluate is None:
        return (
            f"champion v{champion} has no evaluation on dataset {digest} and no evaluator "
            "was given to re-evaluate it"
        )
    got = _run_evaluate(evaluate, f"models:/{model_name}/{champion}", mine["dataset_uri"])
    if isinstance(got, str):
        return got
    theirs = check_report(got, f"re-evaluation of v{champion}")
    if theirs["dataset_digest"] != digest:
        return (
            f"re-evaluation of champion v{champion} gave digest {theirs['dataset_digest']}, "
            f"expected {digest}"
        )
    return record_evaluation(champion, theirs, model_name)


def _move_aliases(c: MlflowClient, name: str, new: int | None, previous: int | None) -> None:
    if new is None:
        c.delete_registered_model_alias(name, CHAMPION)
    else:
        c.set_registered_model_alias(name, CHAMPION, str(new))
    if previous is None:
        c.delete_registered_model_alias(name, PREVIOUS)
    else:
        c.set_registered_model_alias(name, PREVIOUS, str(previous))
    if new is not None and _alias_version(c, name, CHALLENGER) == new:
        c.delete_registered_model_alias(name, CHALLENGER)


def _tag(decision: PromotionDecision) -> None:
    """The decision on the version itself (the audit row holds the rest: actor, metrics, policy)."""
    if decision.challenger_version is None:
        return
    tags: dict[str, Any] = {"gate.champion_before": decision.champion_version_before}
    for key in ("ci_low", "mcnemar_p"):
        if key in decision.statistic:
            tags[f"gate.{key}"] = decision.statistic[key]
    verdict = "promoted" if decision.promoted else "refused"
    _set_gate_tags(decision, decision.challenger_version, verdict, tags)


def _set_gate_tags(
    decision: PromotionDecision, version: int, verdict: str, extra: Mapping[str, Any]
) -> None:
    """A decision's ``gate.*`` tags on ``version``: what it was, why, when, and its audit row."""
    tags = {
        "gate.decision": verdict,
        "gate.reason": decision.reason[:4000],
        "gate.decided_at": decision.decided_at,
        "gate.decision_id": decision.id,
        "gate.audit_hash": decision.audit_hash,
        **extra,
    }
    for key, value in tags.items():
        client().set_model_version_tag(decision.model_name, str(version), key, str(value))


class _AliasError(Exception):
    pass


def _row(decision: PromotionDecision) -> dict[str, Any]:
    now = audit.utcnow()
    decision.decided_at = now.isoformat()
    row = {k: v for k, v in asdict(decision).items() if k not in ("id", "decided_at", "audit_hash")}
    return {**row, "decided_at": now}


def _commit(
    decision: PromotionDecision,
    expected: int | None,
    new: int | None,
    previous: int | None,
    seed: tuple[int | None, int | None],
) -> bool:
    """Record ``decision`` iff the champion is still ``expected``; move aliases when it changes.

    Aliases move while the pointer row is locked, so they follow the pointer's order exactly.
    """
    c = client()
    name = decision.model_name
    with audit.locked_pointer(name, *seed) as (conn, pointer):
        if pointer.version != expected:
            return False
        if new != expected:
            if not audit.compare_and_set(conn, name, expected, new, previous):
                return False
            try:
                _move_aliases(c, name, new, previous)
            except MlflowException as exc:
                with contextlib.suppress(MlflowException):  # best effort: put them back
                    _move_aliases(c, name, expected, pointer.previous_version)
                raise _AliasError(str(exc).splitlines()[0]) from exc
        decision.id, decision.audit_hash = audit.insert_decision(conn, _row(decision))
    return True


def _seed(c: MlflowClient, name: str) -> tuple[int | None, int | None]:
    """Aliases found in MLflow, used only to initialise a missing champion-pointer row."""
    return _alias_version(c, name, CHAMPION), _alias_version(c, name, PREVIOUS)


def promote(
    version: int,
    policy: PromotionPolicy | None = None,
    evaluate: Evaluate | None = None,
    eval_dataset: str | None = None,
    actor: str | None = None,
    model_name: str = MODEL_NAME,
) -> PromotionDecision:
    """Gate ``version`` against the champion; move aliases when it wins. Always audited.

    A champion moved outside the gate is refused first (``UngatedAlias``): the gate does not
    compare against, nor take over from, a state it did not decide."""
    require_gated(CHAMPION, model_name)
    policy = policy or PromotionPolicy()
    actor = actor or default_actor()
    c = client()
    version = int(model_version(c, model_name, version).version)
    decision: PromotionDecision | None = None
    failure = "champion changed concurrently; refused after retries"
    for _ in range(MAX_CAS_ATTEMPTS):
        seed = _seed(c, model_name)
        pointer = audit.read_pointer(model_name)
        champion = pointer.version if pointer else seed[0]
        try:
            verdict = _decide(version, champion, policy, model_name, evaluate, eval_dataset)
        except PromotionError as exc:  # malformed or unpaired reports: a refusal, audited
            verdict = Verdict(False, str(exc))
        new = version if verdict.promoted else champion
        decision = PromotionDecision(
            model_name=model_name,
            action="promote",
            challenger_version=version,
            champion_version_before=champion,
            champion_version_after=new,
            promoted=verdict.promoted,
            reason=verdict.reason,
            actor=actor,
            metrics=verdict.metrics,
            statistic=verdict.statistic,
            policy=asdict(policy),
        )
        try:
            if _commit(decision, champion, new, champion if verdict.promoted else None, seed):
                break
        except _AliasError as exc:
            failure = f"moving the aliases failed: {exc}"
            break
    assert decision is not None
    if decision.id is None:  # lost the compare-and-set every time, or MLflow refused the move
        decision.promoted = False
        decision.champion_version_after = decision.champion_version_before
        decision.reason = failure
        decision.id, decision.audit_hash = audit.record_decision(_row(decision))
    _tag(decision)
    return decision


def rollback(actor: str | None = None, model_name: str = MODEL_NAME) -> PromotionDecision:
    """Move ``champion`` back to ``previous-champion`` (which is then cleared). Audited."""
    for alias in (CHAMPION, PREVIOUS):
        require_gated(alias, model_name)
    c = client()
    with audit.locked_pointer(model_name, *_seed(c, model_name)) as (conn, pointer):
        old, back = pointer.version, pointer.previous_version
        if back is None or old is None:
            raise PromotionError(f"model {model_name!r} has no previous-champion to roll back to")
        reason = f"rollback: champion v{old} -> v{back}"
        decision = PromotionDecision(
            model_name, "rollback", back, old, back, True, reason, actor or default_actor()
        )
        if not audit.compare_and_set(conn, model_name, old, back, None):
            raise PromotionError("champion changed concurrently; rollback not applied")
        _move_aliases(c, model_name, back, None)
        decision.id, decision.audit_hash = audit.insert_decision(conn, _row(decision))
    _set_gate_tags(decision, old, "rolled-back", {})
    return decision
