"""Registry fixtures: a real MLflow tracking store + registry and a real audit database per test.

MLflow's schema migrations cost ~11 s on SQLite, so one migrated, empty store is built per
session and copied into each test's home.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from infra.settings import get_settings, reload_settings
from tests.conftest import unavailable

N = 1000  # questions in the frozen evaluation set


def make_report(
    correct: range | set[int],
    incorrect: range | set[int],
    *,
    digest: str = "d-main",
    latency: float = 120.0,
    n: int = N,
) -> dict[str, Any]:
    """An EvalReport-like dict with chosen per-question outcomes (the rest abstained)."""
    correct, incorrect = set(correct), set(incorrect)
    assert not correct & incorrect
    outcomes = {
        str(i): "correct" if i in correct else "incorrect" if i in incorrect else "abstained"
        for i in range(n)
    }
    attempted = len(correct) + len(incorrect)
    return {
        "dataset_uri": f"/data/{digest}",
        "dataset_digest": digest,
        "split": "test",
        "n": n,
        "accuracy": len(correct) / n,
        "accuracy_by_domain": {},
        "accuracy_by_kind": {},
        "hallucination_rate": len(incorrect) / n,
        "hallucination_attempted": len(incorrect) / attempted if attempted else 0.0,
        "abstention_rate": (n - attempted) / n,
        "latency_p50_ms": latency / 2,
        "latency_p95_ms": latency,
        "tokens_per_s": 1000.0,
        "routed_fraction": 0.12,
        "estimator_auroc": 0.8,
        "ece": 0.05,
        "brier": 0.1,
        "flops_per_answer": 1e6,
        "outcomes": outcomes,
    }


# three evaluations on the same frozen set: a champion, a better and a worse challenger
BASE = make_report(range(850), range(850, 900))
BETTER = make_report(range(900), range(900, 940))
WORSE = make_report(range(820), range(820, 860))


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()  # runs the migrations
    with sqlite3.connect(path) as conn:  # WAL persists in the file: fewer fsyncs per commit
        conn.execute("PRAGMA journal_mode=WAL")
    return path


@dataclass
class Registry:
    home: Path
    experiment_id: str

    def log_model(self) -> tuple[str, str]:
        """A tiny pyfunc model in its own run; returns (model_uri, run_id)."""
        import mlflow
        import mlflow.pyfunc

        class Echo(mlflow.pyfunc.PythonModel):
            def predict(self, context: Any, model_input: list[str], params: Any = None) -> Any:
                return model_input

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mlflow.start_run(experiment_id=self.experiment_id) as run:
                info = mlflow.pyfunc.log_model(
                    name="model", python_model=Echo(), pip_requirements=[]
                )
        return info.model_uri, run.info.run_id

    def version(self, report: dict[str, Any] | None, status: str = "accepted") -> int:
        """Register a real model version (alias challenger) and record its evaluation."""
        from registry import record_evaluation, register_challenger

        uri, run_id = self.log_model()
        version = register_challenger(
            uri, run_id, {"validation_status": status, "dataset_digest": "train-digest"}
        )
        if report is not None:
            record_evaluation(version, report)
        return version


def open_registry(home: Path, template: Path) -> Registry:
    import mlflow

    home.mkdir(parents=True, exist_ok=True)
    uri = get_settings().tracking_uri
    if uri.startswith("sqlite:"):
        shutil.copy(template, home / "mlflow.db")
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.create_experiment(
        f"registry-{uuid.uuid4().hex[:6]}", artifact_location=str(home / "artifacts")
    )
    return Registry(home, experiment_id)


@pytest.fixture
def registry(veracity_home: Path, mlflow_template: Path) -> Iterator[Registry]:
    import mlflow

    yield open_registry(veracity_home, mlflow_template)
    mlflow.set_tracking_uri(None)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped afterwards."""
    try:
        import psycopg2
    except ImportError as exc:  # pragma: no cover - dependency missing
        unavailable(f"psycopg2 is not installed: {exc}")
    dsn = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
    try:
        admin = psycopg2.connect(dsn)
    except psycopg2.OperationalError as exc:
        unavailable(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}".strip())
    admin.autocommit = True
    name = f"veracity_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        from registry import audit

        for url in [u for u in audit._ENGINES if name in u]:
            audit._ENGINES.pop(url).dispose()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def pg_registry(
    veracity_home: Path, mlflow_template: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Registry]:
    """One fresh PostgreSQL database as both the audit DB and the MLflow backend store."""
    import mlflow

    monkeypatch.setenv("VERACITY_DATABASE_URL", postgres_url)
    monkeypatch.setenv("VERACITY_MLFLOW_TRACKING_URI", postgres_url)
    reload_settings()
    yield open_registry(veracity_home, mlflow_template)
    mlflow.set_tracking_uri(None)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def any_registry(request: pytest.FixtureRequest) -> Registry:
    """The registry on each backend: SQLite (files under the home) and PostgreSQL."""
    name = "registry" if request.param == "sqlite" else "pg_registry"
    return cast(Registry, request.getfixturevalue(name))
