import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from infra.procs import free_port
from infra.settings import get_settings, with_driver
from models.precision import bf16_is_fast, training_device_type


@pytest.fixture(autouse=True)
def precision_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VERACITY_BASE_PRECISION", raising=False)


def shown() -> dict[str, str]:
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_settings_show_the_stores_and_the_precision_training_gets_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    device = training_device_type()
    here = "bf16" if bf16_is_fast(device) else "fp32"
    s = shown()
    assert s["profile"] == "local" and s["database"].startswith("sqlite:///")
    assert s["base_precision"] == f"auto -> {here} ({device})"
    monkeypatch.setenv("VERACITY_BASE_PRECISION", "FP32")
    assert shown()["base_precision"] == f"fp32 -> fp32 ({device})"


def test_settings_refuse_a_bad_precision_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERACITY_BASE_PRECISION", "fp8")
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 2 and "VERACITY_BASE_PRECISION must be one of" in result.output
    assert result.output.strip().count("\n") == 0 and "Traceback" not in result.output


@pytest.mark.parametrize("command", [["settings"], ["run"], ["stack", "status"], ["registry"]])
def test_a_bad_setting_stops_every_command_in_one_line(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VERACITY_PROFILE", "cloud")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0
    assert "setting profile (VERACITY_PROFILE or profile in veracity.toml)" in result.output
    assert "got 'cloud'" in result.output


def test_a_broken_toml_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "veracity.toml"
    broken.write_text("home = [\n")
    monkeypatch.setenv("VERACITY_CONFIG", str(broken))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 2 and f"error: {broken} is not valid TOML" in result.output


def test_a_bare_postgresql_url_gets_the_installed_driver() -> None:
    assert with_driver("postgresql://u@h:5432/db") == "postgresql+psycopg2://u@h:5432/db"
    assert with_driver("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    for kept in ("postgresql+psycopg2://u@h/db", "sqlite:///x.db", "http://127.0.0.1:5000"):
        assert with_driver(kept) == kept


def test_an_unreachable_tracking_server_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERACITY_MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    for command in (["registry"], ["run", "--n", "20", "--tiny", "--steps", "1"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert "does not answer; start it (`veracity stack up`)" in result.output
