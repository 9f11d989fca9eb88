"""End to end on the server profile: the pipeline runs against PostgreSQL, S3 (through a proxy
that fails 20% of requests with 500/503), an MLflow tracking server and a Prefect server, and
every claim is checked through the services' own APIs.

One pipeline run (module fixture) feeds every test here. The default gate refuses a model this
small (floors 0.80 / 0.10), so ``champion`` is set by running the same gate with a test policy
whose floors are 0 (:class:`registry.PromotionPolicy`), in its own process."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from models.sizes import TINY_MODEL
from tests.integration.conftest import SECRET, Services, api, run_python

pytestmark = [pytest.mark.slow, pytest.mark.services]

ARGS: dict[str, Any] = {
    "n": 120,
    "seed": 11,
    "train_params": {
        "max_steps": 10,
        "batch_size": 8,
        "checkpoint_every": 5,
        "val_check_interval": 5,
        "model": dict(TINY_MODEL),
    },
}

PROMOTE = """
import json, sys
from registry import PromotionPolicy, promote
policy = PromotionPolicy(min_accuracy=0.0, max_hallucination=1.0, latency_p95_budget_ms=1e9)
d = promote({version}, policy, actor="integration-test")
print("DECISION", json.dumps({{"promoted": d.promoted, "reason": d.reason}}))
"""

LOAD = """
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model("models:/veracity-apr@champion")
out = model.predict(pd.DataFrame({"document": ["The patient is male. Smoking: no."],
                                  "question": ["Report the smoking status."]}))
print("ANSWER", out.iloc[0]["answer"], sorted(out.columns))
"""


@pytest.fixture(scope="module")
def run(services: Services, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("server-home")
    env = services.env(home)
    out = home / "result.json"
    code = f"from flows.pipeline import main; main({[json.dumps(ARGS), str(out)]!r})"
    run_python(code, env, home / "logs" / "pipeline.log", timeout=900)
    result = json.loads(out.read_text())
    version = result["promotion"]["version"]
    model = api(
        f"{services.config.mlflow_url}/api/2.0/mlflow/registered-models/get?name=veracity-apr"
    )["registered_model"]
    before = {a["alias"]: a["version"] for a in model.get("aliases", [])}
    promoted = run_python(PROMOTE.format(version=version), env, home / "logs" / "promote.log")
    loaded = run_python(LOAD, env, home / "logs" / "load.log")  # a fresh process
    return {
        "result": result,
        "home": home,
        "promoted": promoted,
        "loaded": loaded,
        "aliases_before": before,
    }


def s3(services: Services) -> Any:
    return boto3.client("s3", endpoint_url=services.config.s3_endpoint, region_name="us-east-1")


def test_pipeline_completes_through_s3_faults(services: Services, run: dict[str, Any]) -> None:
    result = run["result"]
    assert result["dataset"]["uri"].startswith(f"s3://{services.config.bucket}/datasets/")
    assert set(result["stages"]) == {"generate", "validate", "train", "evaluate", "promote"}
    counts = services.proxy.counts
    faults = counts["500"] + counts["503"]
    assert counts["requests"] > 50 and faults > 0.1 * counts["requests"], counts


def test_runs_and_registry_live_in_postgres_via_the_mlflow_api(
    services: Services, run: dict[str, Any]
) -> None:
    base = services.config.mlflow_url + "/api/2.0/mlflow"
    exp = api(f"{base}/experiments/get-by-name?experiment_name=veracity")["experiment"]
    runs = api(f"{base}/runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"]
    stages = {
        t["value"] for r in runs for t in r["data"].get("tags", []) if t["key"] == "veracity.stage"
    }
    assert {"pipeline", "train"} <= stages
    train = next(r for r in runs if r["info"]["run_id"] == run["result"]["model"]["run_id"])
    assert train["info"]["status"] == "FINISHED"
    assert exp["artifact_location"].startswith("mlflow-artifacts:")
    model = api(f"{base}/registered-models/get?name=veracity-apr")["registered_model"]
    aliases = {a["alias"]: a["version"] for a in model.get("aliases", [])}
    version = str(run["result"]["promotion"]["version"])
    # The pipeline registered it as challenger (the default gate refused it on floors); the
    # zero-floor test policy then made it champion, which moves the alias.
    assert run["aliases_before"] == {"challenger": version}, run["aliases_before"]
    assert run["result"]["promotion"]["decision"]["promoted"] is False
    assert aliases == {"champion": version}, aliases
    assert '"promoted": true' in run["promoted"]

    import psycopg2  # the same facts, straight from the tracking server's PostgreSQL database

    cfg = services.config
    with psycopg2.connect(cfg.database_url("mlflow")) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT alias, version FROM registered_model_aliases WHERE name = %s", ("veracity-apr",)
        )
        assert dict(cur.fetchall()) == {"champion": int(version)}
        cur.execute("SELECT status FROM runs WHERE run_uuid = %s", (train["info"]["run_id"],))
        assert cur.fetchone() == ("FINISHED",)
    with psycopg2.connect(cfg.database_url("audit")) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema='public'")
        assert cur.fetchone()[0] >= 1  # the gate's audit table is on PostgreSQL too


def test_dataset_and_model_artifacts_in_s3_match_sha256(
    services: Services, run: dict[str, Any]
) -> None:
    client, bucket = s3(services), services.config.bucket
    uri = run["result"]["dataset"]["uri"]
    prefix = uri.removeprefix(f"s3://{bucket}/")
    manifest = json.loads(
        client.get_object(Bucket=bucket, Key=f"{prefix}/manifest.json")["Body"].read()
    )
    assert manifest["digest"] == run["result"]["dataset"]["digest"]
    for rel, info in manifest["files"].items():
        body = client.get_object(Bucket=bucket, Key=f"{prefix}/{rel}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == info["sha256"], rel

    model_dir = Path(run["result"]["model"]["model_dir"])
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="mlartifacts/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    checked = 0
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        local = hashlib.sha256((model_dir / name).read_bytes()).hexdigest()
        remote = [k for k in keys if k.endswith(f"/{name}")]
        assert remote, f"{name} not in s3://{bucket}/mlartifacts: {keys}"
        for key in remote:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert hashlib.sha256(body).hexdigest() == local, key
            checked += 1
    assert checked >= 3
    assert not [k for k in keys if k.endswith((".pkl", ".pickle"))]  # weights, not pickles


def test_flow_run_completed_via_the_prefect_api(services: Services, run: dict[str, Any]) -> None:
    base = services.config.prefect_api_url
    runs = api(f"{base}/flow_runs/filter", {"flows": {"name": {"any_": ["pipeline"]}}})
    assert runs and all(r["state_type"] == "COMPLETED" for r in runs), [
        (r["name"], r["state_type"]) for r in runs
    ]
    tasks = api(f"{base}/task_runs/filter", {"flow_runs": {"id": {"any_": [runs[0]["id"]]}}})
    assert tasks is not None


def test_champion_loads_through_the_tracking_server(run: dict[str, Any]) -> None:
    line = next(x for x in run["loaded"].splitlines() if x.startswith("ANSWER"))
    assert "abstained" in line and "confidence" in line


def test_credentials_never_reach_mlflow_prefect_or_logs(
    services: Services, run: dict[str, Any]
) -> None:
    base = services.config.mlflow_url + "/api/2.0/mlflow"
    exp = api(f"{base}/experiments/get-by-name?experiment_name=veracity")["experiment"]
    runs = api(f"{base}/runs/search", {"experiment_ids": [exp["experiment_id"]]})["runs"]
    versions = api(f"{base}/model-versions/search?filter=name%3D%27veracity-apr%27")
    models = api(f"{base}/logged-models/search", {"experiment_ids": [exp["experiment_id"]]})
    seen = json.dumps([runs, versions, models])
    assert runs and SECRET not in seen
    assert "AWS_SECRET_ACCESS_KEY" not in seen

    papi = services.config.prefect_api_url
    logs = api(f"{papi}/logs/filter", {"limit": 200})
    flow_runs = api(f"{papi}/flow_runs/filter", {})
    assert logs and SECRET not in json.dumps([logs, flow_runs])

    files = [
        *services.root.rglob("*.log"),
        *run["home"].rglob("*.log"),
        *run["home"].rglob("*.json"),
        services.root / "env",
    ]
    assert len(files) > 5
    for path in files:
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
