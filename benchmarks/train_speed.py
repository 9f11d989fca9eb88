"""The main job's training step with the base's attention in bf16 and in fp32 on the CPU;
writes results/train_speed.json.

    .venv/bin/python benchmarks/train_speed.py [--n 2000] [--steps 30] [--repeats 3]
        [--out benchmarks/results/train_speed.json]

Training is ~85% of ``veracity run``. Under the base's bf16 autocast, the CPU's bf16
flash-attention kernel is slower than its fp32 one at these head widths (24), so
``models.layers.CPU_ATTENTION_FP32`` computes attention in fp32 on the CPU, as generation
already did. Measured side by side in one run (rounds interleaved, medians of seconds per step,
each variant from the same freshly initialised model on the same random batches of the main
job's packed examples, forward + backward + AdamW). The dataset is the main job's (all domains,
``--seed``) at ``--n`` records per domain: the packed lengths do not depend on the count.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models import layers
from models.config import TrainConfig
from models.lit import APRModule, Encoded, QADataModule, collate
from models.precision import training_precision
from models.train import model_config
from worldgen.dataset import generate
from worldgen.domains import domain_names

VARIANTS = {"bf16_attention": False, "fp32_attention": True}  # name: CPU_ATTENTION_FP32


def batches(
    examples: list[Encoded], size: int, pad: int, n: int, seed: int
) -> list[dict[str, torch.Tensor]]:
    """``n`` batches of random examples, as training's shuffled loader draws them."""
    order = np.random.default_rng(seed).permutation(len(examples))
    return [
        collate([examples[i] for i in order[k * size : (k + 1) * size]], pad, True)
        for k in range(n)
    ]


def padding(batch: list[dict[str, torch.Tensor]], pad: int) -> float:
    return float(np.mean([(b["idx"] == pad).float().mean().item() for b in batch]))


def step_seconds(
    config: dict[str, Any], data: list[dict[str, torch.Tensor]], fp32_attention: bool, bf16: bool
) -> float:
    """Mean seconds of one forward + backward + AdamW step over ``data``."""
    layers.CPU_ATTENTION_FP32 = fp32_attention
    torch.manual_seed(0)
    module = APRModule(config, lr=3e-3, max_steps=len(data))
    opt = torch.optim.AdamW(module.parameters(), lr=3e-3)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    t0 = time.perf_counter()
    for b in data:
        with autocast:
            out = module.model(b["idx"], b["targets"], b["loss_mask"])
        assert out.loss is not None
        out.loss.backward()
        opt.step()
        opt.zero_grad()
    return (time.perf_counter() - t0) / len(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="records per domain")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=30, help="steps timed per variant and round")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--out", default="benchmarks/results/train_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg = TrainConfig()
    fields = cfg.model_fields()
    bf16 = training_precision(cfg.precision, "cpu") == "bf16-mixed"
    with tempfile.TemporaryDirectory() as tmp:
        uri = str(Path(tmp) / "ds")
        generate(list(domain_names()), args.n, args.seed, uri)
        dm = QADataModule(uri, fields["max_seq_len"], cfg.batch_size, pack=cfg.pack)
        dm.setup()
    assert dm.train_set is not None and dm.tokenizer is not None
    examples, pad = dm.train_set.examples, dm.tokenizer.pad_id
    config = model_config(cfg, dm.tokenizer, fields)
    lengths = [len(e.ids) for e in examples]
    data = batches(examples, cfg.batch_size, pad, args.steps, args.seed)
    step_seconds(config, data[:3], True, bf16)  # warm-up: allocation, kernel choice
    times: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for _ in range(args.repeats):
        for name, fp32_attention in VARIANTS.items():
            times[name].append(step_seconds(config, data, fp32_attention, bf16))
            print(f"{name}: {times[name][-1]:.3f} s/step", flush=True)
    layers.CPU_ATTENTION_FP32 = True
    median = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "processor": platform.processor(),
            "torch": torch.__version__,
        },
        "threads": torch.get_num_threads(),
        "base_precision": "bf16" if bf16 else "fp32",
        "steps": args.steps,
        "repeats": args.repeats,
        "examples": len(examples),
        "tokens_per_example": {"mean": float(np.mean(lengths)), "max": int(max(lengths))},
        "padding_fraction": padding(data, pad),
        "step_s": {k: {"median": median[k], "all": v} for k, v in times.items()},
        "bf16_over_fp32_attention": median["bf16_attention"] / median["fp32_attention"],
        "main_job_steps": cfg.max_steps,
        "main_job_steps_s": {k: cfg.max_steps * v for k, v in median.items()},
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("step_s", "bf16_over_fp32_attention")}))


if __name__ == "__main__":
    main()
