"""Answers per second one at a time and in batches, side by side; writes results/batching.json.

    .venv/bin/python benchmarks/batching.py [MODEL DATASET] [--questions 512 --batch 256]

MODEL is a model folder or an MLflow URI, DATASET the dataset whose test questions are asked;
by default the main job's (``make run``): the champion and its dataset. The same questions are
answered one at a time (``Answerer.__call__``, as a single request is served) and in batches of
``--batch`` (``Answerer.many``: one left-padded, KV-cached generation a batch, rows leaving it as
they finish), alternately ``--repeats`` times; the medians are compared. Target (issue 30):
batch 256 >= 10x batch 1 on 2 cores, with the same answers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from flows.params import DEFAULT_N
from infra.errors import UserError
from infra.settings import get_settings
from infra.storage import join
from models.answer import Answer, Answerer
from models.evaluate import resolve_model
from worldgen.dataset import load_qa

SAME = ("text", "raw", "derivation", "finished", "answer_tokens")


def timed(fn: object) -> tuple[float, list[Answer]]:
    t0 = time.perf_counter()
    out = fn()  # type: ignore[operator]
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", nargs="?", default="models:/veracity-apr@champion")
    parser.add_argument("dataset", nargs="?", default=None)
    parser.add_argument("--questions", type=int, default=512)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/batching.json")
    args = parser.parse_args()
    args.dataset = args.dataset or join(get_settings().datasets_root, f"ds-seed0-n{DEFAULT_N}")
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        answerer = Answerer.load(resolve_model(args.model))
        qa = load_qa(args.dataset, "test").head(args.questions)
    except UserError as exc:
        print(f"skipped: {exc} (run `make run` first, or name a model and a dataset)")
        return
    pairs = list(zip(qa["document"], qa["question"], strict=True))
    one_s, many_s = [], []
    for _ in range(args.repeats):
        seconds, alone = timed(lambda: [answerer(d, q) for d, q in pairs])
        one_s.append(seconds)
        seconds, together = timed(lambda: answerer.many(pairs, batch_size=args.batch))
        many_s.append(seconds)
    differ = [
        i
        for i, (a, b) in enumerate(zip(alone, together, strict=True))
        if any(getattr(a, k) != getattr(b, k) for k in SAME)
    ]
    one, many = statistics.median(one_s), statistics.median(many_s)
    result = {
        "model": args.model,
        "dataset": args.dataset,
        "questions": len(pairs),
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "seconds_batch_1": one_s,
        "seconds_batched": many_s,
        "answers_per_s_batch_1": len(pairs) / one,
        "answers_per_s_batched": len(pairs) / many,
        "speedup": one / many,
        "answers_differing": len(differ),
        "abstentions_differing": sum(
            a.abstained != b.abstained for a, b in zip(alone, together, strict=True)
        ),
        "target_speedup": 10.0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
