from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

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
