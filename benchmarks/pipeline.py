"""Orchestration cost of the Prefect pipeline.

Writes ``benchmarks/results/pipeline.json``:

* ``orchestration_overhead``: wall time of the ``pipeline`` flow (a fresh process, Prefect's
  temporary server, persisted results) over the wall time of the same stages called as plain
  functions in a fresh process, same dataset/config (small size), each in its own empty home.
* ``orchestration_overhead_running_server``: the same with a Prefect server already running
  (``PREFECT_API_URL``), which removes the temporary server's start.
* ``cold_start_s``: from starting the command to the first stage running.
* ``main_job_s``: ``veracity run`` with its defaults (``--skip-main`` leaves it out).

Usage: ``python benchmarks/pipeline.py [--skip-main] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SMALL: dict[str, Any] = {
    "domains": ["medical"],
    "n": 200,
    "seed": 1,
    "train_params": {
        "max_steps": 40,
        "batch_size": 16,
        "model": {"n_layer": 2, "n_head": 2, "d_model": 64, "probe_layer": 0,
                  "warmup_steps": 5, "max_seq_len": 384},
    },
}  # fmt: skip
FIRST_STAGE = re.compile(r"stage 1/5 generate")

PLAIN = r"""
import json, sys, time
from dataclasses import asdict
t0 = time.perf_counter()
from flows.pipeline import PipelineParams, TrainParams
from models.evaluate import evaluate
from models.train import TrainConfig, train
from registry import promote, record_evaluation, register_challenger, tracking
from validation import require_valid
from worldgen.dataset import generate
args = json.loads(sys.argv[1])
p = PipelineParams(domains=args["domains"], n=args["n"], seed=args["seed"],
                   train=TrainParams(**args["train_params"]))
ref = generate(p.domains, p.n, p.seed, p.dataset_out())
report = require_valid(ref)
config = TrainConfig(**p.train.model_dump(exclude={"model"}), model=dict(p.train.model))
result = train(ref.uri, config)
validation = {"success": True, "suite_hash": report.suite_hash}
run_id, model_uri = tracking.log_training(asdict(result), asdict(config), validation, None)
ev = evaluate(result.model_dir, ref.uri)
tracking.log_evaluation(run_id, ev)
version = register_challenger(model_uri, run_id, {"validation_status": "accepted"})
record_evaluation(version, ev.to_dict())
decision = promote(version, evaluate=evaluate, eval_dataset=ref.uri)
print("PLAIN_DONE", time.perf_counter() - t0, decision.promoted)
"""


def env_for(home: Path, **extra: str) -> dict[str, str]:
    (home / "prefect").mkdir(parents=True, exist_ok=True)  # Prefect creates only the leaf
    env = os.environ.copy()
    env.update(
        VERACITY_HOME=str(home / "veracity"),
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        GX_ANALYTICS_ENABLED="false",
        MLFLOW_ENABLE_TELEMETRY="false",
        **extra,
    )
    if "PREFECT_API_URL" not in extra:
        env.pop("PREFECT_API_URL", None)
    return env


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float | None, str]:
    """Wall seconds, seconds until the first stage started, and the output."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    first: float | None = None
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if first is None and FIRST_STAGE.search(line):
            first = time.perf_counter() - start
    proc.wait()
    wall = time.perf_counter() - start
    out = "".join(lines)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{out[-3000:]}")
    return wall, first, out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def running_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    prefect = str(Path(sys.executable).with_name("prefect"))
    server = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env_for(home, PREFECT_UI_ENABLED="false"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5):
                return server, url
        except OSError:
            time.sleep(1)
    server.kill()
    raise SystemExit("prefect server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-main", action="store_true")
    parser.add_argument(
        "--main-job-s",
        type=float,
        default=None,
        help="record a main-job wall time measured separately (with --skip-main)",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pipeline.json"))
    args = parser.parse_args()
    py = sys.executable
    flow_cmd = [py, "-m", "flows.pipeline", json.dumps(SMALL)]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        plain_s, _, _ = timed([py, "-c", PLAIN, json.dumps(SMALL)], env_for(t / "plain"))
        print(f"plain functions: {plain_s:.1f} s", flush=True)
        flow_s, cold, _ = timed(flow_cmd, env_for(t / "flow"))
        print(f"prefect flow:    {flow_s:.1f} s (first stage after {cold:.1f} s)", flush=True)
        rerun_s, _, _ = timed(flow_cmd, env_for(t / "flow"))
        print(f"rerun (cached):  {rerun_s:.1f} s", flush=True)
        server, url = running_server(t / "server")
        try:
            served_s, served_cold, _ = timed(flow_cmd, env_for(t / "served", PREFECT_API_URL=url))
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"flow, running server: {served_s:.1f} s", flush=True)
        main_s = args.main_job_s
        if not args.skip_main:
            main_s, _, out = timed(
                [py, "-c", "from flows.run_cmd import run_command; run_command()"],
                env_for(t / "main"),
            )
            print(out[-2500:])
            print(f"main job: {main_s:.1f} s", flush=True)
    result = {
        "orchestration_overhead": round(flow_s / plain_s, 3),
        "orchestration_overhead_running_server": round(served_s / plain_s, 3),
        "cold_start_s": round(cold or float("nan"), 2),
        "cold_start_running_server_s": round(served_cold or float("nan"), 2),
        "main_job_s": None if main_s is None else round(main_s, 1),
        "plain_s": round(plain_s, 2),
        "flow_s": round(flow_s, 2),
        "flow_rerun_cached_s": round(rerun_s, 2),
        "flow_running_server_s": round(served_s, 2),
        "small": SMALL,
        "cpus": os.cpu_count(),
        "note": "wall times of fresh processes; the machine was shared with other jobs",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
