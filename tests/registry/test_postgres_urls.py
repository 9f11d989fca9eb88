"""The server profile's URLs work as README writes them (``postgresql://``), on the real PostgreSQL."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows.cli import app
from infra.settings import get_settings
from registry import audit


def test_bare_postgresql_urls_reach_mlflow_and_the_audit_table(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = postgres_url.replace("postgresql+psycopg2://", "postgresql://")
    monkeypatch.setenv("VERACITY_MLFLOW_TRACKING_URI", bare)
    monkeypatch.setenv("VERACITY_DATABASE_URL", bare)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["registry"])
    assert result.exit_code == 0, result.output
    assert "no registered versions of veracity-apr" in result.output
    audit.ensure_schema()
    assert audit.list_decisions() == []
