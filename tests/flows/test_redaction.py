"""Secrets never printed: every command that prints a setting or a store masks its password."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from infra.procs import free_port
from infra.redact import MASK, redact, secret_values
from infra.settings import reload_settings

PASSWORD = "hunter2-pa55word"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql+psycopg2://u:pw9x@db:5432/v", "postgresql+psycopg2://u:***@db:5432/v"),
        ("http://user:p@ss@127.0.0.1:5000/x", "http://user:***@127.0.0.1:5000/x"),
        ("error: http://u:pw9x@h:1 does not answer", "error: http://u:***@h:1 does not answer"),
        (
            "https://h/x?X-Amz-Credential=abc&token=zz&a=1",
            "https://h/x?X-Amz-Credential=***&token=***&a=1",
        ),
        (
            "postgresql://postgres@127.0.0.1:5432/postgres",
            "postgresql://postgres@127.0.0.1:5432/postgres",
        ),
        ("sqlite:////tmp/home/mlflow.db", "sqlite:////tmp/home/mlflow.db"),
    ],
)
def test_urls_lose_their_passwords(text: str, expected: str) -> None:
    assert redact(text, secrets=[]) == expected


def test_values_of_secret_variables_are_masked_anywhere() -> None:
    env = {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI", "PGPASSWORD": "pgpw1234", "HOME": "/root"}
    found = secret_values(env)
    assert found == ["wJalrXUtnFEMI", "pgpw1234"]
    assert (
        redact("key wJalrXUtnFEMI and pgpw1234 in /root", found)
        == f"key {MASK} and {MASK} in /root"
    )


@pytest.fixture
def stores_with_passwords(monkeypatch: pytest.MonkeyPatch) -> str:
    """A database and a tracking server whose URLs carry a password; nothing listens there."""
    port = free_port()
    monkeypatch.setenv(
        "VERACITY_DATABASE_URL", f"postgresql://veracity:{PASSWORD}@127.0.0.1:{port}/v"
    )
    monkeypatch.setenv(
        "VERACITY_MLFLOW_TRACKING_URI", f"http://veracity:{PASSWORD}@127.0.0.1:{port}"
    )
    reload_settings()
    return PASSWORD


def test_settings_masks_every_password(stores_with_passwords: str) -> None:
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 0, result.output
    assert stores_with_passwords not in result.output
    assert f"veracity:{MASK}@127.0.0.1" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["registry"],
        ["registry", "--verify"],
        ["promote", "1"],
        ["rollback"],
        ["serve", "--port", "1"],
        ["run", "--n", "50"],
    ],
)
def test_errors_about_a_store_mask_its_password(
    args: list[str], stores_with_passwords: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert stores_with_passwords not in result.output, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
