"""Shared fixtures: an isolated home per test, and real services started by the tests themselves.

A test that needs a service it cannot start skips with the reason on a user's machine; with
VERACITY_REQUIRE_SERVICES=1 (as in CI) it fails instead, so CI never passes by skipping.

Markers (``make test-fast`` leaves out all three; ``make test`` and CI run everything):
``e2e`` for tests/e2e and ``integration`` for tests/integration, both set here by folder;
``integration`` also for any test that uses a fixture starting a real service (SERVICE_FIXTURES)
or is marked ``services``; ``slow`` (more than ~5 s) is set on the test itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.settings import get_settings, reload_settings

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")


ROOT = Path(__file__).resolve().parent.parent
# MLflow's defaults in the working folder, a home or Lightning's logs: what a test writes into
# the checkout when it forgets its tmp_path
STRAY = ("mlruns", "mlflow.db", ".veracity", "lightning_logs")


@pytest.fixture(autouse=True, scope="session")
def checkout_left_as_found() -> Iterator[None]:
    before = {name for name in STRAY if (ROOT / name).exists()}
    yield
    wrote = {name for name in STRAY if (ROOT / name).exists()} - before
    assert not wrote, f"tests wrote {sorted(wrote)} into the checkout; use tmp_path"


TESTS = Path(__file__).resolve().parent
FOLDER_MARKS = {"e2e": "e2e", "integration": "integration"}
# fixtures that start or connect to a real service: moto's S3 server, a PostgreSQL database, the
# server-profile stack, a `prefect server` process
SERVICE_FIXTURES = {"s3_server", "postgres_url", "services", "prefect_server"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path).resolve()
        folder = path.relative_to(TESTS).parts[0] if path.is_relative_to(TESTS) else ""
        if folder in FOLDER_MARKS:
            item.add_marker(FOLDER_MARKS[folder])
        uses = set(getattr(item, "fixturenames", ()))
        real_service = uses & SERVICE_FIXTURES or item.get_closest_marker("services")
        if real_service and not item.get_closest_marker("integration"):
            item.add_marker("integration")


def services_required() -> bool:
    return os.environ.get("VERACITY_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip on a user's machine, fail in CI."""
    if services_required():
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


def pipeline_env(veracity_home: Path, prefect_home: Path) -> dict[str, str]:
    """The environment of a pipeline run in a subprocess: its own homes and Prefect's temporary
    server (no API URL), no telemetry, and time for that server to start on a loaded machine."""
    prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect creates only the leaf
    env = os.environ.copy()
    env.update(
        VERACITY_HOME=str(veracity_home),
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        GX_ANALYTICS_ENABLED="false",
        MLFLOW_ENABLE_TELEMETRY="false",
    )
    env.pop("PREFECT_API_URL", None)
    env.pop("VERACITY_CONFIG", None)
    return env


def was_read(answer: Any) -> bool:
    """The model read the question and answered: no error, or the guide's refusal of what it
    wrote (a tiny test model's answer may be another question's label), which keeps ``raw``."""
    return bool(answer.error == "" or answer.raw != "unknown")


def accept(uri: str, home: Path) -> str:
    """Validate ``uri`` (the commands use only accepted data) with the gate's files under
    ``home``: a module-scoped fixture runs before the per-test home below is set."""
    from validation import validate

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VERACITY_HOME", str(home))
        reload_settings()
        assert validate(uri, docs=False).success
    get_settings.cache_clear()
    return uri


@pytest.fixture(autouse=True)
def veracity_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("VERACITY_HOME", str(home))
    monkeypatch.delenv("VERACITY_CONFIG", raising=False)
    reload_settings()
    yield home
    get_settings.cache_clear()  # read again lazily, once the test's environment is undone


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3 endpoint on loopback (moto's server mode), started by the test session."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:  # pragma: no cover - dev extra missing
        unavailable(f"moto[server] is not installed: {exc}")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import uuid

    import boto3

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "VERACITY_S3__ENDPOINT_URL": s3_server,
    }.items():
        monkeypatch.setenv(key, value)
    reload_settings()
    bucket = f"veracity-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    return bucket
