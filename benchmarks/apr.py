"""Measure the APR transformer at its default size on this machine; writes results/apr.json.

    .venv/bin/python benchmarks/apr.py [--out benchmarks/results/apr.json] [--quick]

Everything is measured in this run: the matmul peak in the base's precision (large square
matmul; bf16, or fp32 on a CPU that only emulates bf16: ``models.precision``), training
throughput (-> MFU), inference throughput per mode, and the estimator + router overhead against
the base forward. Timings are medians of repeats; nothing is estimated from another machine.
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
from models.apr import APRConfig, APRTransformer
from models.precision import base_dtype, base_precision


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_peak(sizes: tuple[int, ...] = (2048, 4096), repeats: int = 5) -> dict[str, float]:
    """Best median FLOP/s of a large square matmul in the base's precision, per size."""
    out, dtype = {}, base_dtype("cpu")
    for n in sizes:
        a = torch.randn(n, n, dtype=dtype)
        b = torch.randn(n, n, dtype=dtype)
        out[str(n)] = 2 * n**3 / median_time(lambda a=a, b=b: a @ b, repeats)
    return out


def batches(cfg: APRConfig, batch: int, seed: int) -> Callable[[], tuple[torch.Tensor, ...]]:
    """A learnable synthetic stream: random tokens whose second half repeats the first, so
    some positions are predictable (the copy) and some are not (the noise) — the estimator then
    has something to score."""
    g = torch.Generator().manual_seed(seed)

    def next_batch() -> tuple[torch.Tensor, ...]:
        half = (cfg.max_seq_len + 1) // 2
        x = torch.randint(6, cfg.vocab_size, (batch, half), generator=g)
        seq = torch.cat([x, x], 1)[:, : cfg.max_seq_len + 1]
        return seq[:, :-1].contiguous(), seq[:, 1:].contiguous()

    return next_batch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "apr.json"))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--train-steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="tiny run to check the script works")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    cfg = APRConfig()
    if args.quick:
        cfg = APRConfig(n_layer=2, d_model=64, n_head=2, probe_layer=1, max_seq_len=64)
        args.train_steps, args.repeats, args.batch = 4, 2, 4
    model = APRTransformer(cfg)
    next_batch = batches(cfg, args.batch, seed=1)
    tokens = args.batch * cfg.max_seq_len

    peaks = matmul_peak((256, 512) if args.quick else (2048, 4096))
    peak = max(peaks.values())

    # --- training (apr mode, past the capacity warm-up) -> MFU -------------------------------
    model.train()
    model.step.fill_(cfg.warmup_steps)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    step_times, fractions, losses = [], [], []
    for i in range(args.train_steps):
        x, y = next_batch()
        t0 = time.perf_counter()
        out = model(x, y)
        assert out.loss is not None
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        if i >= 3:  # the first steps allocate and warm caches
            step_times.append(time.perf_counter() - t0)
            fractions.append(float(out.metrics["routed_fraction"]))
        losses.append(out.loss.item())
    train_step_s = statistics.median(step_times)
    train_fraction = statistics.mean(fractions[-10:])
    train_flops = 3 * model.flops_per_token(train_fraction) * tokens / train_step_s
    # the machine may be shared: measure the peak again after training, keep the best
    peaks_after = matmul_peak((256, 512) if args.quick else (2048, 4096))
    peaks = {k: max(v, peaks_after[k]) for k, v in peaks.items()}
    peak = max(peaks.values())

    # --- inference: calibrate on held-out data, then measure each mode on other data --------
    model.eval()
    with torch.inference_mode():
        calib = torch.cat([model(next_batch()[0]).est_scores for _ in range(2)])
        model.calibrate_threshold(calib)
        x, _ = next_batch()
        modes = ("dense", "apr", "all")
        fractions_by_mode, times = {}, {m: [] for m in (*modes, "base", "estimator")}
        for mode in modes:
            model.cfg.mode = mode
            fractions_by_mode[mode] = float(model(x).routed.float().mean())
        # interleaved rounds, so load from other processes hits every mode alike
        h_probe, _, _, _ = model.base(x)
        for _ in range(args.repeats):
            for mode in modes:
                model.cfg.mode = mode
                times[mode].append(median_time(lambda: model(x), 1, warmup=0))
            model.cfg.mode = "apr"
            times["base"].append(median_time(lambda: model.base(x), 1, warmup=0))
            pos = torch.arange(x.size(1)).expand_as(x)
            route = lambda p=pos: model.route(model.scores(h_probe)[1], x, p)  # noqa: E731
            est = median_time(route, 3, warmup=1)
            times["estimator"].append(est)
        per_mode = {}
        for mode in modes:
            dt = statistics.median(times[mode])
            per_mode[mode] = {
                "tokens_per_s": tokens / dt,
                "routed_fraction": fractions_by_mode[mode],
                "flops_per_token": model.flops_per_token(fractions_by_mode[mode]),
                "forward_s": dt,
            }
        base_s = statistics.median(times["base"])
        est_s = statistics.median(times["estimator"])

    result = {
        "config": cfg.to_dict(),
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "machine": {"cpu_count": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
        "torch": torch.__version__,
        "estimator_overhead": est_s / base_s,
        "estimator_router_s": est_s,
        "base_forward_s": base_s,
        "routed_fraction_inference": per_mode["apr"]["routed_fraction"],
        "routed_fraction_train": train_fraction,
        "modes": per_mode,
        "apr_over_dense_tokens_per_s": per_mode["apr"]["tokens_per_s"]
        / per_mode["dense"]["tokens_per_s"],
        "train": {
            "step_s": train_step_s,
            "tokens_per_s": tokens / train_step_s,
            "flops_per_s": train_flops,
            "loss_first": losses[0],
            "loss_last": losses[-1],
        },
        "base_precision": base_precision("cpu"),
        "matmul_peak_flops": peak,
        "matmul_by_size": peaks,
        "mfu": train_flops / peak,
        "targets": {
            "estimator_overhead": "<= 0.03",
            "routed_fraction_inference": "0.10-0.15",
            "apr_over_dense_tokens_per_s": ">= 0.9",
            "mfu": ">= 0.3",
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("config", "modes")}, indent=2))
    for mode, m in per_mode.items():
        print(mode, {k: round(v, 4) for k, v in m.items()})


if __name__ == "__main__":
    main()
