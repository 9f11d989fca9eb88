"""bf16 against fp32 for the base stack on this machine; writes results/precision.json.

    .venv/bin/python benchmarks/precision.py [--out benchmarks/results/precision.json] [--quick]

APR's premise is that bf16 is the cheap precision. This measures whether it is here, side by
side in one run (rounds interleaved, medians): square matmuls, and the default model's training
step (batch 16, full sequences, forward + backward + AdamW) and one-question answer forward
(batch 1) with the base forced to each precision. ``models.precision`` chooses bf16 only where
this CPU has bf16 arithmetic of its own; the JSON records what it chose and the CPU's flags.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models import precision
from models.apr import APRConfig, APRTransformer
from models.config import TrainConfig
from models.tokenizer import SLOTS

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


def seconds(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def rounds(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each, measured in interleaved rounds so load hits all alike."""
    for fn in fns.values():
        fn()  # warm-up: allocation, kernel selection
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(seconds(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def with_base(name: str, fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        os.environ[precision.ENV] = name
        return fn()

    return run


def matmuls(sizes: tuple[int, ...], repeats: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for n in sizes:
        mats = {
            k: (torch.randn(n, n, dtype=d), torch.randn(n, n, dtype=d)) for k, d in DTYPES.items()
        }
        fns = {k: (lambda a=a, b=b: a @ b) for k, (a, b) in mats.items()}
        out[str(n)] = {k: 2 * n**3 / s for k, s in rounds(fns, repeats).items()}
    return out


def model_steps(cfg: APRConfig, batch: int, repeats: int) -> dict[str, dict[str, float]]:
    torch.manual_seed(0)
    model = APRTransformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(6, cfg.vocab_size, (batch, cfg.max_seq_len))
    y = torch.randint(6, cfg.vocab_size, (batch, cfg.max_seq_len))
    question = x[:1, : cfg.max_seq_len // 2]

    def train_step() -> None:
        out = model(x, y)
        assert out.loss is not None
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    def answer_forward() -> None:
        with torch.inference_mode():
            model(question)

    model.train()
    train = rounds({k: with_base(k, train_step) for k in DTYPES}, repeats)
    model.eval()
    answer = rounds({k: with_base(k, answer_forward) for k in DTYPES}, repeats * 3)
    return {"train_step_s": train, "answer_forward_s": answer}


def cpu_flags() -> list[str]:
    wanted = {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    return sorted(wanted & set(text.split()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "precision.json"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="tiny run to check the script works")
    args = ap.parse_args()
    torch.set_num_threads(2)
    asked = os.environ.pop(precision.ENV, None)
    chosen = precision.base_precision("cpu")
    pointer = {"n_slots": len(SLOTS), "slot_offset": 6}  # as the default tokenizer gives it
    # the main job's model size
    size = {**TrainConfig().model_fields(), **pointer, "vocab_size": 512, "mode": "apr"}
    if args.quick:
        size.update(d_model=32, n_head=2, max_seq_len=32)
        args.repeats = 2
    cfg = APRConfig(**size)
    mm = matmuls((128, 256) if args.quick else (384, 1024), args.repeats)
    steps = model_steps(cfg, 4 if args.quick else 16, args.repeats)
    if asked is not None:
        os.environ[precision.ENV] = asked
    result = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "flags": cpu_flags(),
            "loadavg_at_end": os.getloadavg(),
        },
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "auto_chooses": chosen,
        "config": cfg.to_dict(),
        "matmul_flops": mm,
        **steps,
        "bf16_over_fp32_time": {
            "train_step": steps["train_step_s"]["bf16"] / steps["train_step_s"]["fp32"],
            "answer_forward": steps["answer_forward_s"]["bf16"] / steps["answer_forward_s"]["fp32"],
            **{f"matmul_{n}": v["fp32"] / v["bf16"] for n, v in mm.items()},
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("auto_chooses", "bf16_over_fp32_time")}, indent=2))


if __name__ == "__main__":
    main()
