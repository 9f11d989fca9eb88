"""The command line as a person meets it: one-line errors, exit codes, no tracebacks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()


def test_generate_prints_uri_and_digest(tmp_path: Path) -> None:
    out = str(tmp_path / "d")
    result = runner.invoke(app, ["generate", "--domain", "medical", "--n", "50", "--out", out])
    assert result.exit_code == 0, result.output
    uri, digest = result.output.split()
    assert uri == out and len(digest) == 64


def test_workers_generate_the_same_dataset(tmp_path: Path) -> None:
    """Two processes, two shards of two blocks each: the digest of one process, one shard."""
    args = ["generate", "--domain", "medical", "--n", "6000", "--seed", "3", "--out"]
    one = runner.invoke(app, [*args, str(tmp_path / "one")])
    two = runner.invoke(app, [*args, str(tmp_path / "two"), "--workers", "2"])
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    assert one.output.split()[1] == two.output.split()[1]
    assert len(list((tmp_path / "two" / "medical" / "records").glob("part-*.parquet"))) == 2


def test_bad_workers_is_one_line() -> None:
    result = runner.invoke(app, ["generate", "--n", "5", "--workers", "0"])
    assert result.exit_code == 2 and "--workers must be between 1 and" in result.output
    assert result.output.strip().count("\n") == 0


@pytest.mark.parametrize("workers", ["1", "2"])
def test_bad_shards_is_refused_with_any_workers(workers: str, tmp_path: Path) -> None:
    """More workers raise the shard count, never a bad one into a good one."""
    args = ["generate", "--n", "5", "--shards", "0", "--workers", workers]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "ds")])
    assert result.exit_code == 2 and "--shards must be >= 1, got 0" in result.output
    assert result.output.strip().count("\n") == 0 and not (tmp_path / "ds").exists()


def test_bad_domain_is_one_line_no_traceback() -> None:
    result = runner.invoke(app, ["generate", "--domain", "astro", "--n", "5"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0 and "--domain must be one of" in result.output


def test_bad_size_is_named() -> None:
    result = runner.invoke(app, ["generate", "--n", "0"])
    assert result.exit_code == 2 and "--n must be between" in result.output


def test_summary_of_missing_dataset(tmp_path: Path) -> None:
    result = runner.invoke(app, ["summary", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "manifest.json is missing" in result.output


def test_unwritable_out_is_one_line_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = runner.invoke(app, ["generate", "--n", "20", "--out", str(blocker / "ds")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0 and f"cannot create {blocker}/ds" in result.output


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ("nope", "no model at nope: not a folder, nor an MLflow URI"),
        ("{tmp}", "is not a Veracity model (no model.safetensors and config.json)"),
        ("models:/veracity-apr@champion", "models:/veracity-apr@champion: "),
    ],
)
def test_evaluate_names_what_is_not_a_model(model: str, needle: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", model.format(tmp=tmp_path), str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0 and needle in result.output, result.output


@pytest.mark.parametrize("command", [["ui"], ["serve"]])
def test_a_port_in_use_is_one_line(command: list[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = runner.invoke(app, [*command, "--port", port])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"port {port} on 127.0.0.1 is in use" in result.output


def test_a_new_home_reads_the_registry_quietly(tmp_path: Path) -> None:
    """MLflow creating a new store's tables is not news to the person who typed the command."""
    cli = [sys.executable, "-c", "from flows.cli import app; app()", "registry"]
    env = {**os.environ, "VERACITY_HOME": str(tmp_path / "home")}
    done = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.strip() == "no registered versions of veracity-apr"


@pytest.mark.parametrize(
    "command", [["evaluate", "model", "data", "--report"], ["run", "--n", "20", "--json"]]
)
def test_an_output_file_that_cannot_be_written_is_refused_before_the_work(
    command: list[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = runner.invoke(app, [*command, str(blocker / "out.json")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"error: cannot create {blocker}" in result.output
    result = runner.invoke(app, [*command, str(tmp_path)])
    assert (
        result.exit_code == 2 and f"{tmp_path} is a folder; name a file to write" in result.output
    )


BAD_INPUT = [  # (args, environment, what the one line must say)
    (["summary", "{file}"], {}, "is a file; a folder was expected there"),
    (["train", "{file}"], {}, "is a file; a folder was expected there"),
    (["validate", "{file}"], {}, "is a file; a folder was expected there"),
    (["generate", "--n", "20", "--out", "{file}/ds"], {}, "{file}"),
    (["serve", "--host", "999.1.1.1"], {}, "is neither an IP address nor a known host name"),
    (["serve", "--host", "10.255.255.1"], {}, "is not an address of this machine"),
    (["settings"], {"VERACITY_CONFIG": "{tmp}/none.toml"}, "none.toml: no such file"),
    (["registry"], {"VERACITY_CONFIG": "{tmp}/none.toml"}, "none.toml: no such file"),
]


@pytest.mark.parametrize(("args", "env", "needle"), BAD_INPUT)
def test_bad_input_is_one_line_without_a_traceback(
    args: list[str], env: dict[str, str], needle: str, tmp_path: Path
) -> None:
    """The project's own bad-input set: each is refused in one line, exit 2, no traceback."""
    file = tmp_path / "a-file"
    file.write_text("not a dataset")
    fill = {"file": str(file), "tmp": str(tmp_path)}
    environ = {**os.environ, **{k: v.format(**fill) for k, v in env.items()}}
    cli = [sys.executable, "-c", "from flows.cli import app; app()"]
    proc = subprocess.run(
        [*cli, *(a.format(**fill) for a in args)], capture_output=True, text=True, env=environ
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert needle.format(**fill) in lines[0], lines[0]
