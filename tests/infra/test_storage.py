from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from infra import storage
from infra.settings import Settings, reload_settings


def test_local_write_is_atomic_and_round_trips(tmp_path: Path) -> None:
    target = str(tmp_path / "a" / "b.bin")
    storage.write_bytes(target, b"hello")
    assert storage.read_bytes(target) == b"hello"
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.bin"]  # no temp files left


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(storage.StorageError, match="does not exist"):
        storage.read_bytes(str(tmp_path / "nope"))


def test_parquet_round_trip_local(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    storage.write_parquet(str(tmp_path / "t.parquet"), frame)
    assert storage.read_parquet(str(tmp_path / "t.parquet")).to_pandas().equals(frame)


@pytest.mark.services
def test_s3_round_trip_uses_endpoint_from_settings(s3_bucket: str) -> None:
    uri = f"s3://{s3_bucket}/x/y.bin"
    storage.write_bytes(uri, b"payload")
    assert storage.read_bytes(uri) == b"payload"
    assert storage.exists(uri) and not storage.exists(f"s3://{s3_bucket}/x/none")
    assert storage.list_prefix(f"s3://{s3_bucket}/x") == [uri]


def test_settings_from_toml_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "v.toml"
    cfg.write_text(
        'profile = "server"\nhome = "/srv/v"\n[s3]\nendpoint_url = "http://127.0.0.1:9"\n'
    )
    monkeypatch.setenv("VERACITY_CONFIG", str(cfg))
    monkeypatch.delenv("VERACITY_HOME")
    s = Settings()
    assert s.profile == "server" and str(s.home) == "/srv/v"
    assert s.s3.endpoint_url == "http://127.0.0.1:9"
    monkeypatch.setenv("VERACITY_PROFILE", "local")
    assert Settings().profile == "local"  # environment beats the file
    reload_settings()


def test_generating_into_a_missing_bucket_is_one_line(s3_bucket: str) -> None:
    result = CliRunner().invoke(app, ["generate", "--n", "20", "--out", "s3://no-such-bucket/ds"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "s3://no-such-bucket/ds: the bucket does not exist" in result.output


NO_CREDENTIALS = (
    "no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
)


def test_s3_without_credentials_is_one_line(s3_bucket: str, tmp_path: Path) -> None:
    drop = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    nowhere = str(tmp_path / "none")
    env |= {"AWS_SHARED_CREDENTIALS_FILE": nowhere, "AWS_CONFIG_FILE": nowhere}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    out = f"s3://{s3_bucket}/ds"
    # a fresh process: boto3's default session keeps the credentials it found first
    cli = [sys.executable, "-c", "from flows.cli import app; app()"]
    for args, uri in (
        (["generate", "--n", "20", "--out", out], out),
        (["summary", out], f"{out}/manifest.json"),
    ):
        done = subprocess.run([*cli, *args], env=env, capture_output=True, text=True)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        assert done.stderr.strip() == f"error: {uri}: {NO_CREDENTIALS}"
