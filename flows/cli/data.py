"""``veracity generate``, ``veracity summary`` and ``veracity validate``: the data stages.

Great Expectations is imported inside ``validate`` only: it costs ~3.7 s at start-up on these
2 cores (``python -c "import great_expectations"``), which every other command would pay.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Annotated

import typer

from flows.cli.common import command, fail, say
from infra.errors import ExitCode, UserError
from infra.settings import get_settings
from infra.storage import join
from worldgen.dataset import generate as generate_dataset
from worldgen.dataset import process_pool, read_manifest
from worldgen.domains import domain_names


def _domains(domain: str) -> list[str]:
    if domain == "all":
        return list(domain_names())
    if domain not in domain_names():
        raise UserError(f"--domain must be one of {', '.join(domain_names())}, all; got {domain!r}")
    return [domain]


@command
def generate(
    domain: Annotated[str, typer.Option(help=f"{', '.join(domain_names())} or all")] = "all",
    n: Annotated[int, typer.Option(help="records per domain")] = 2000,
    seed: Annotated[int, typer.Option(help="master seed")] = 0,
    shards: Annotated[
        int, typer.Option(help="parquet shards per table (content is identical)")
    ] = 1,
    out: Annotated[str | None, typer.Option(help="folder or s3://bucket/prefix")] = None,
    workers: Annotated[
        int, typer.Option(help="processes generating shards at once (at least as many shards)")
    ] = 1,
    phrasing: Annotated[
        str,
        typer.Option(help="in-family (what training reads) or held-out (the phrasing test)"),
    ] = "in-family",
) -> None:
    """Generate a world-model dataset; prints its URI and digest.

    The digest is the same for any --shards and --workers. --phrasing held-out writes the same
    records in the seed's held-out surface forms only: the test of phrasing never trained on."""
    # one worker runs in this process (no pool to start); process_pool checks any other count
    pool = nullcontext(None) if workers == 1 else process_pool(workers)
    # at least a shard per worker; a bad --shards is left as given, for generate to refuse
    at_least = shards if shards < 1 else max(shards, workers)
    target = out or join(get_settings().datasets_root, f"ds-seed{seed}-n{n}")
    with pool as mapper:
        ref = generate_dataset(
            _domains(domain), n, seed, target, shards=at_least, mapper=mapper, phrasing=phrasing
        )
    say(f"{ref.uri}\n{ref.digest}")


@command
def summary(uri: str) -> None:
    """Print a dataset's manifest summary (domains, sizes, splits, digest)."""
    say(describe(uri))


def describe(uri: str) -> str:
    m = read_manifest(uri)
    lines = [
        f"dataset {uri}",
        f"digest  {m['digest']}",
        f"seed    {m['seed']}",
        f"phrasing {m.get('phrasing', {}).get('rendering', 'in-family')}",
        f"{'domain':<10} {'records':>8} {'docs':>8} {'qa':>8}  splits (train/validation/test)",
    ]
    for name, info in m["domains"].items():
        s, rows = info["splits"], info["rows"]
        splits = f"{s.get('train', 0)}/{s.get('validation', 0)}/{s.get('test', 0)}"
        lines.append(
            f"{name:<10} {rows['records']:>8} {rows['documents']:>8} {rows['qa']:>8}  {splits}"
        )
    return "\n".join(lines)


@command
def validate(
    uri: Annotated[str, typer.Argument(help="dataset URI (a folder or s3://bucket/prefix)")],
) -> None:
    """Validate a dataset against the suites derived from the world model.

    Exit 0 when every expectation holds; 3 when the dataset is rejected (a one-screen summary
    and the Data Docs path); 2 for a bad URI."""
    from validation import validate as run_gate

    report = run_gate(uri)
    say(report.summary())
    if not report.success:
        fail("the dataset failed validation (summary above)", ExitCode.REJECTED)
