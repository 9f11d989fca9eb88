"""One hierarchy of errors a person can fix, and one table of exit codes.

Every package raises a subclass of :class:`VeracityError` for input it refuses (a dataset that
is missing, a setting that cannot be used, a version that does not exist). The command line
prints such an error as one line and exits with the error's code; anything else is a bug and
keeps its traceback. ``infra`` is the bottom of the dependency graph, so every package can
import this module.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a ``veracity`` command's exit status means, for every command."""

    OK = 0
    FAILED = 1  # a stage or a service failed; outputs of earlier stages stay cached
    USAGE = 2  # bad input: one line on stderr, no work started
    REJECTED = 3  # the data failed validation, or the gate refused the version (audited)
    TAMPERED = 4  # the audit trail or an alias was changed outside the gate


def first_line(exc: BaseException) -> str:
    """An exception's first line, or its type's name when it has no text (library messages
    run to paragraphs; a one-line error quotes their first)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class VeracityError(Exception):
    """An error the person at the keyboard can fix; its message says how, in one line."""

    exit_code: ExitCode = ExitCode.USAGE

    def one_line(self) -> str:
        return first_line(self)


class UserError(VeracityError):
    """Bad input: an option, a path, a setting, a name that does not exist."""


class ServiceError(VeracityError):
    """A service the command needs (tracking store, database, S3) did not answer as asked."""


class RejectedError(VeracityError):
    """The data or the version was judged and refused; the verdict is recorded."""

    exit_code = ExitCode.REJECTED


class TamperedError(VeracityError):
    """Something recorded was changed outside the gate."""

    exit_code = ExitCode.TAMPERED
