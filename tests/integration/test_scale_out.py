"""World generation on Dask (prefect-dask ``DaskTaskRunner`` over a 2-worker ``LocalCluster``)
gives the same dataset digest as a local, single-shard run, and the shards really ran as
Prefect tasks on the cluster (checked through the Prefect server's API)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import Services, api, run_python

pytestmark = [pytest.mark.slow, pytest.mark.services]

DOMAINS = ["medical", "legal", "financial"]
N = 4200  # two 4096-record blocks per domain: six shards

GENERATE = """
from flows.pipeline import generate
ref = generate(domains={domains!r}, n={n}, seed=5, out={out!r}, shards=4, dask="local")
print("REF", __import__("json").dumps(ref))
"""


def test_dask_generation_matches_local_digest(services: Services, tmp_path: Path) -> None:
    from worldgen.dataset import generate, read_manifest

    local = generate(DOMAINS, N, 5, str(tmp_path / "local"), shards=1)
    out = str(tmp_path / "dask")
    log = run_python(
        GENERATE.format(domains=DOMAINS, n=N, out=out),
        services.env(tmp_path / "home"),
        tmp_path / "home" / "dask.log",
    )
    ref = json.loads(next(x for x in log.splitlines() if x.startswith("REF "))[4:])
    assert ref["digest"] == local.digest
    assert read_manifest(out)["digest"] == local.digest
    assert read_manifest(out)["shards"] == 4

    base = services.config.prefect_api_url
    flows = api(f"{base}/flow_runs/filter", {"flows": {"name": {"any_": ["generate-on-dask"]}}})
    assert flows and flows[-1]["state_type"] == "COMPLETED"
    tasks = api(f"{base}/task_runs/filter", {"task_runs": {"name": {"like_": "generate-shard"}}})
    done = [t for t in tasks if t["state_type"] == "COMPLETED"]
    assert len(done) >= 6, [(t["name"], t["state_type"]) for t in tasks]
