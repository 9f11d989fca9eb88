import json

import pytest
from typer.testing import CliRunner

from flows.cli import app
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
