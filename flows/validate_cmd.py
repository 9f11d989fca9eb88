"""``veracity validate URI``: run the consistency gate on a dataset.

Exit 0 when every expectation holds; 3 when the dataset is rejected (a one-screen summary and
the Data Docs path are printed, no traceback); 2 for a bad URI or any other user error.
Register in ``flows/cli.py`` with ``app.command(name="validate")(validate_command)``.
"""

from __future__ import annotations

from typing import Annotated

import typer

EXIT_REJECTED = 3
EXIT_USAGE = 2


def validate_command(
    uri: Annotated[str, typer.Argument(help="dataset URI (a folder or s3://bucket/prefix)")],
) -> None:
    """Validate a dataset against the suites derived from the world model."""
    from infra.storage import StorageError
    from worldgen.dataset import DatasetError

    try:
        from validation import validate

        report = validate(uri)
    except (DatasetError, StorageError, ValueError, KeyError, OSError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(EXIT_USAGE) from None
    typer.echo(report.summary())
    if not report.success:
        raise typer.Exit(EXIT_REJECTED)
