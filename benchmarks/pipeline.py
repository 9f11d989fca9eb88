"""Orchestration cost of the Prefect pipeline.

Writes ``benchmarks/results/pipeline.json``:

* ``orchestration_overhead``: median wall time of the ``pipeline`` flow (a fresh process,
  Prefect's temporary server, persisted results) over the median wall time of the same stages
  called as plain functions in a fresh process, same dataset/config (small size), each run in
  its own empty home. Plain and flow runs alternate (``--repeats`` pairs), so a change in the
  machine's load hits both sides alike; ``pairwise_overhead`` is the median of the per-pair
  ratios.
* ``orchestration_overhead_cpu``: the same ratio on CPU seconds (user + system, the process
  and every child it waited for, the temporary server included). On a shared machine wall
  time mostly measures the other jobs; CPU time measures the work done.
* ``orchestration_overhead_running_server``: the flow with a Prefect server already running
  (``PREFECT_API_URL``), which removes the temporary server's start (the server's own CPU
  during the run is counted in the CPU ratio).
* ``cold_start_s``: from starting the command to the first stage running.
* ``load_avg``: the 1-minute load average before each run (2 cores: above 2 means waiting).
* ``main_job_s``: ``veracity run`` with its defaults (``--skip-main`` leaves it out).

Usage: ``python benchmarks/pipeline.py [--skip-main] [--repeats 3] [--out PATH]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
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
        "model": {
            "n_layer": 2,
            "n_head": 2,
            "d_model": 64,
            "probe_layer": 0,
            "warmup_steps": 5,
            "max_seq_len": 384,
        },
    },
}
FIRST_STAGE = re.compile(r"stage 1/5 generate")

PLAIN = r"""
import json, sys, time
from dataclasses import asdict
t0 = time.perf_counter()
# from flows.pipeline, as measured so far: the baseline imports Prefect (flows.params would not)
from flows.pipeline import PipelineParams, TrainParams
from models.evaluate import evaluate
from models.config import TrainConfig
from models.train import train
from registry import promote, record_evaluation, register_challenger, tracking
from validation import require_valid
from worldgen.dataset import generate
args = json.loads(sys.argv[1])
p = PipelineParams(domains=args["domains"], n=args["n"], seed=args["seed"],
                   train=TrainParams(**args["train_params"]))
ref = generate(p.domains, p.n, p.seed, p.dataset_out())
report = require_valid(ref)
config = p.train.to_config()
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


@dataclass
class Timing:
    wall: float
    cpu: float  # user + system of the process tree (children that were waited for)
    first: float | None  # seconds until the first stage started
    load: float  # 1-minute load average when the run started
    out: str


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _proc_cpu(pid: int) -> float:
    """CPU seconds of a running process (itself and its reaped children), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def timed(cmd: list[str], env: dict[str, str], server_pid: int | None = None) -> Timing:
    """Run ``cmd`` to the end; wall and CPU seconds, time to the first stage, the output."""
    load = os.getloadavg()[0]
    cpu0 = _children_cpu()
    server0 = _proc_cpu(server_pid) if server_pid else 0.0
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    first: float | None = None
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if first is None and FIRST_STAGE.search(line):
            first = time.perf_counter() - start
    proc.wait()
    wall = time.perf_counter() - start
    cpu = _children_cpu() - cpu0
    if server_pid:
        cpu += _proc_cpu(server_pid) - server0
    out = "".join(lines)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({proc.returncode}):\n{out[-3000:]}")
    return Timing(wall, cpu, first, load, out)


def med(values: list[float]) -> float:
    return round(statistics.median(values), 2)


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
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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
    parser.add_argument("--repeats", type=int, default=3, help="plain/flow pairs (interleaved)")
    parser.add_argument("--served-repeats", type=int, default=1, help="runs on a running server")
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
    plain: list[Timing] = []
    flows: list[Timing] = []
    served: list[Timing] = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for i in range(args.repeats):
            p = timed([py, "-c", PLAIN, json.dumps(SMALL)], env_for(t / f"plain{i}"))
            plain.append(p)
            print(
                f"[{i}] plain functions: {p.wall:.1f} s wall, {p.cpu:.1f} s cpu "
                f"(load {p.load:.1f})",
                flush=True,
            )
            f = timed(flow_cmd, env_for(t / f"flow{i}"))
            flows.append(f)
            print(
                f"[{i}] prefect flow:    {f.wall:.1f} s wall, {f.cpu:.1f} s cpu "
                f"(load {f.load:.1f}; first stage after {f.first or float('nan'):.1f} s)",
                flush=True,
            )
        rerun = timed(flow_cmd, env_for(t / "flow0"))
        print(f"rerun (cached):  {rerun.wall:.1f} s", flush=True)
        server, url = running_server(t / "server")
        try:
            for i in range(args.served_repeats):
                sv = timed(flow_cmd, env_for(t / f"served{i}", PREFECT_API_URL=url), server.pid)
                served.append(sv)
                print(
                    f"[{i}] flow, running server: {sv.wall:.1f} s wall, {sv.cpu:.1f} s cpu "
                    f"(load {sv.load:.1f})",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
        main_s = args.main_job_s
        if not args.skip_main:
            m = timed(
                [py, "-c", "from flows.cli.run import run; run()"],
                env_for(t / "main"),
            )
            main_s = m.wall
            print(m.out[-2500:])
            print(f"main job: {main_s:.1f} s", flush=True)
    plain_s, flow_s, served_s = (med([x.wall for x in xs]) for xs in (plain, flows, served))
    plain_cpu, flow_cpu, served_cpu = (med([x.cpu for x in xs]) for xs in (plain, flows, served))
    loads = [round(x.load, 2) for x in (*plain, *flows, rerun, *served)]
    result = {
        "orchestration_overhead": round(flow_s / plain_s, 3),
        "pairwise_overhead": round(
            statistics.median(f.wall / p.wall for p, f in zip(plain, flows, strict=True)), 3
        ),
        "orchestration_overhead_cpu": round(flow_cpu / plain_cpu, 3),
        "orchestration_overhead_running_server": round(served_s / plain_s, 3),
        "orchestration_overhead_running_server_cpu": round(served_cpu / plain_cpu, 3),
        "cold_start_s": med([x.first or float("nan") for x in flows]),
        "cold_start_running_server_s": med([x.first or float("nan") for x in served]),
        "main_job_s": None if main_s is None else round(main_s, 1),
        "plain_s": plain_s,
        "flow_s": flow_s,
        "flow_running_server_s": served_s,
        "flow_rerun_cached_s": round(rerun.wall, 2),
        "plain_cpu_s": plain_cpu,
        "flow_cpu_s": flow_cpu,
        "flow_running_server_cpu_s": served_cpu,
        "runs": {
            "plain_wall_s": [round(x.wall, 2) for x in plain],
            "flow_wall_s": [round(x.wall, 2) for x in flows],
            "served_wall_s": [round(x.wall, 2) for x in served],
            "plain_cpu_s": [round(x.cpu, 2) for x in plain],
            "flow_cpu_s": [round(x.cpu, 2) for x in flows],
            "served_cpu_s": [round(x.cpu, 2) for x in served],
        },
        "repeats": args.repeats,
        "load_avg": {"min": min(loads), "median": med(loads), "max": max(loads)},
        "small": SMALL,
        "cpus": os.cpu_count(),
        "note": "medians of fresh processes, plain and flow interleaved; the machine was "
        "shared with other jobs (see load_avg)",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
