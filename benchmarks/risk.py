"""Abstention with a guarantee, measured; writes results/risk.json.

    .venv/bin/python benchmarks/risk.py [MODEL DATASET] [--risk 0.01 --confidence 0.9]

MODEL is a model folder or an MLflow URI, DATASET an accepted dataset; by default the main
job's (``make run``): the champion and its dataset. The *trained* model is read (its served
folder's threshold is ignored): every question is answered once, never abstaining, and the
three abstention signals are compared on the same answers:

- ``estimator``: the APR uncertainty estimator's largest score over the answer's tokens;
- ``max_prob``: 1 - the least probable answer token's probability (the model's own);
- ``entropy``: the mean entropy of the answer tokens' distributions.

For each: the area under the risk-coverage curve (AURC) on the test questions; the threshold
``models.risk.certify_risk`` certifies on the calibration split (validation: entities apart
from test) and what it does on test (coverage, hallucination among answered, confident
hallucinations: wrong, not abstained, confidence >= 0.9). Then the guarantee itself: the
calibration and test questions are pooled and split at random by document ``--resplits``
times; on each, the threshold certified on one half is applied to the other, and the guarantee
holds when the realised hallucination among answered questions is at most alpha.
Target (issue 30): it holds on at least 18 of 20, coverage >= 0.95, confident hallucination
<= 0.002.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flows.params import DEFAULT_N
from infra.errors import UserError
from infra.settings import get_settings
from infra.storage import join
from models.abstain import risk_target, selective_outcomes
from models.answer import NEVER_ABSTAIN, SCORES, Answer, Answerer
from models.checkpoint import load_model
from models.evaluate import CONFIDENT, answer_all, resolve_model
from models.guide import Guide
from models.risk import aurc, certify_risk, realised
from worldgen.dataset import load_qa


def trained_answerer(model_dir: str) -> Answerer:
    """The model as trained: answers are never abstained on, whatever folder holds them."""
    model, tok = load_model(model_dir)
    return Answerer(model, tok, NEVER_ABSTAIN, Guide.load(model_dir))


def arrays(raw: list[Answer], truths: list[str]) -> dict[str, np.ndarray]:
    wrong, attempted = selective_outcomes(raw, truths)
    out = {"wrong": wrong, "attempted": attempted}
    out.update({s: np.array([a.score(s) for a in raw]) for s in SCORES})
    out["confidence"] = 1.0 - out["estimator"]
    return out


def take(data: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[rows] for k, v in data.items()}


def per_score(
    cal: dict[str, np.ndarray], test: dict[str, np.ndarray], alpha: float, delta: float
) -> dict[str, Any]:
    out = {}
    att = test["attempted"]
    for s in SCORES:
        cert = certify_risk(cal[s], cal["wrong"], cal["attempted"], alpha, delta, s)
        got = realised(cert, test[s], test["wrong"], att)
        answered = att & (test[s] <= cert.threshold)
        confident = answered & test["wrong"] & (test["confidence"] >= CONFIDENT)
        out[s] = {
            "aurc_test": aurc(test[s][att], test["wrong"][att]),
            "aurc_calibration": aurc(cal[s][cal["attempted"]], cal["wrong"][cal["attempted"]]),
            "certificate": cert.to_dict(),
            "statement": cert.statement(),
            "test_coverage": got["coverage"],
            "test_risk": got["risk"],
            "test_confident_hallucination": float(confident.sum() / len(att)),
            "holds": got["risk"] <= alpha,
        }
    return out


def resplits(
    pooled: dict[str, np.ndarray], groups: np.ndarray, score: str, args: argparse.Namespace
) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    names = np.unique(groups)
    runs = []
    for _ in range(args.resplits):
        cal_names = rng.permutation(names)[: len(names) // 2]
        is_cal = np.isin(groups, cal_names)
        cal, test = take(pooled, is_cal), take(pooled, ~is_cal)
        cert = certify_risk(cal[score], cal["wrong"], cal["attempted"], args.alpha, args.delta)
        got = realised(cert, test[score], test["wrong"], test["attempted"])
        runs.append({"feasible": cert.feasible, "threshold": cert.threshold, **got})
    risks = [r["risk"] for r in runs]
    coverage = [r["coverage"] for r in runs]
    return {
        "score": score,
        "resplits": len(runs),
        "held": sum(r <= args.alpha for r in risks),
        "risk_median": float(np.median(risks)),
        "risk_max": float(np.max(risks)),
        "coverage_median": float(np.median(coverage)),
        "coverage_min": float(np.min(coverage)),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", default="models:/veracity-apr@champion")
    parser.add_argument("dataset", nargs="?", default=None)
    parser.add_argument(
        "--risk", "--alpha", dest="alpha", type=float, help="target risk (default: the settings')"
    )
    parser.add_argument("--confidence", type=float, help="1 - delta (default: the settings')")
    parser.add_argument("--per-domain", type=int, default=1000, help="questions a split/domain")
    parser.add_argument("--resplits", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/risk.json")
    args = parser.parse_args()
    try:
        args.alpha, args.delta = risk_target(args.alpha, args.confidence)
    except UserError as exc:
        parser.error(str(exc))
    args.dataset = args.dataset or join(get_settings().datasets_root, f"ds-seed0-n{DEFAULT_N}")
    try:
        answerer = trained_answerer(resolve_model(args.model))
        frames = {
            s: load_qa(args.dataset, s, per_domain=args.per_domain) for s in ("validation", "test")
        }
    except UserError as exc:
        print(f"skipped: {exc} (run `make run` first, or name a model and a dataset)")
        return
    started = time.perf_counter()
    data = {s: arrays(answer_all(answerer, f), list(f["answer"])) for s, f in frames.items()}
    answer_s = time.perf_counter() - started
    scores = per_score(data["validation"], data["test"], args.alpha, args.delta)
    best = min(SCORES, key=lambda s: scores[s]["aurc_calibration"])
    pooled = {k: np.concatenate([data["validation"][k], data["test"][k]]) for k in data["test"]}
    groups = np.concatenate(
        [(f["domain"] + "/" + f["record_id"].astype(str)).to_numpy() for f in frames.values()]
    )
    result = {
        "model": args.model,
        "dataset": args.dataset,
        "alpha": args.alpha,
        "confidence": args.confidence,
        "questions": {s: len(f) for s, f in frames.items()},
        "answer_s": round(answer_s, 1),
        "never_abstaining_test_risk": float(
            data["test"]["wrong"][data["test"]["attempted"]].mean()
        ),
        "scores": scores,
        "best_by_calibration_aurc": best,
        "estimator_vs_max_prob_aurc": [
            scores["estimator"]["aurc_test"],
            scores["max_prob"]["aurc_test"],
        ],
        "resplits": {s: resplits(pooled, groups, s, args) for s in SCORES},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    brief = {k: v for k, v in result.items() if k not in ("scores", "resplits")}
    brief["scores"] = {
        s: {k: v for k, v in d.items() if k not in ("certificate",)} for s, d in scores.items()
    }
    brief["resplits"] = {
        s: {k: v for k, v in r.items() if k != "runs"} for s, r in result["resplits"].items()
    }
    print(json.dumps(brief, indent=2))


if __name__ == "__main__":
    main()
