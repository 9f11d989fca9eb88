"""What every command shares: one-line errors with the exit code of :mod:`infra.errors`.

A :class:`~infra.errors.VeracityError` from any package is the person's to fix: it is printed
as one line and the command exits with its code. Errors of the services a command talks to
(the tracking store, the database, the file system) are reported the same way at this
boundary. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from infra.errors import ExitCode, ServiceError, UserError, VeracityError
from infra.redact import redact

F = TypeVar("F", bound=Callable[..., Any])


def say(text: str = "", err: bool = False) -> None:
    """Print for a person: every line the command line writes has its secrets masked."""
    typer.echo(redact(text), err=err)


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """One line on stderr (secrets masked: a store's URL may carry its password) and the code."""
    typer.secho(f"error: {redact(message)}", err=True, fg=typer.colors.RED)
    raise typer.Exit(int(code))


def pydantic_line(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'parameters'}: {e['msg']}" for e in exc.errors()
    )


def _service_error(exc: BaseException) -> VeracityError | None:
    """The boundary's own failures as user-facing errors. MLflow and SQLAlchemy are looked up
    only once loaded: an exception of a library this process never imported cannot occur."""
    if "mlflow" in sys.modules:
        from mlflow.exceptions import MlflowException

        if isinstance(exc, MlflowException):
            return ServiceError(str(exc.message))
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

        if isinstance(exc, OperationalError):
            return ServiceError(f"the database did not answer: {str(exc.orig).strip()}")
        if isinstance(exc, ArgumentError | NoSuchModuleError):
            return UserError(f"the database URL cannot be used: {exc}")
    if isinstance(exc, NotADirectoryError) and exc.filename:
        blocker = next((p for p in Path(exc.filename).parents if p.is_file()), None)
        if blocker is not None:
            return UserError(f"{blocker} is a file; a folder was expected there")
    if isinstance(exc, OSError):
        return UserError(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    if isinstance(exc, ValidationError):
        return UserError(pydantic_line(exc))
    return None


def as_user_error(exc: BaseException) -> VeracityError | None:
    return exc if isinstance(exc, VeracityError) else _service_error(exc)


def command(fn: F) -> F:
    """Wrap a command: a person's error is one line and its exit code, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            error = as_user_error(exc)
            if error is None:
                raise
            fail(error.one_line(), error.exit_code)

    return wrapper  # type: ignore[return-value]


# the abstention guarantee asked of an evaluation (None: the settings', models.abstain)
RiskOption = Annotated[
    float | None,
    typer.Option(
        "--risk", help="hallucination rate allowed among answered questions (default 0.01)"
    ),
]
ConfidenceOption = Annotated[
    float | None,
    typer.Option("--confidence", help="confidence that the rate holds (default 0.9)"),
]
