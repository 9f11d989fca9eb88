"""Clean stops: SIGTERM or SIGINT ends a long-running command and every process it started.

Inside :func:`stoppable`, the first signal becomes a ``KeyboardInterrupt`` in the main thread:
Prefect's engine marks the flow run it is in crashed (its own SIGTERM bridge reports first,
then hands the signal on to us), ``prefect.serve`` and the scoring servers unwind, and the
command exits with 128 + the signal number once its children are stopped. Should anything
hang on the way out (a client retrying a server that is already gone), a watchdog stops the
children and ends the process after :data:`GRACE_S` seconds, so a stop never needs SIGKILL.
Outputs are written atomically (datasets commit their manifest last, checkpoints and models
are whole files), so a stop leaves nothing half-written for the next run to trust.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import psutil
import typer

GRACE_S = 6.0  # then the watchdog: the whole stop stays within 10 s
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Stopped(KeyboardInterrupt):
    """The command was told to stop (``signum``)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_seen: list[psutil.Process] = []  # descendants when the signal came (before any was orphaned)


def _descendants() -> list[psutil.Process]:
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def stop_children(timeout: float = 3.0) -> None:
    """SIGTERM every descendant (servers fork workers), then SIGKILL what is left. Those seen
    when the signal came count too: a child killed while unwinding orphans its own children."""
    procs = list({p.pid: p for p in [*_seen, *_descendants()]}.values())
    for proc in procs:
        try:
            proc.terminate()
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            continue


def _hard_stop(signum: int) -> None:
    stop_children(timeout=1.0)
    sys.stderr.write(f"stopped ({signal.Signals(signum).name}; did not unwind in time)\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _seen[:] = _descendants()
    watchdog = threading.Timer(GRACE_S, _hard_stop, args=(signum,))
    watchdog.daemon = True
    watchdog.start()
    for sig in SIGNALS:  # a second signal must not interrupt the unwinding
        signal.signal(sig, signal.SIG_IGN)
    raise Stopped(signum)


def _end_tracking_runs() -> None:
    """MLflow runs this process opened end as KILLED, not left RUNNING forever."""
    if "mlflow" not in sys.modules:
        return
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run(status="KILLED")


@contextmanager
def stoppable() -> Iterator[None]:
    """Run the block so that SIGTERM/SIGINT stop it, its children and the process cleanly."""
    previous = {sig: signal.signal(sig, _on_signal) for sig in SIGNALS}
    try:
        yield
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        _end_tracking_runs()
        stop_children()
        typer.secho(f"stopped ({signal.Signals(signum).name})", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # Not the interpreter's exit: its exit hooks would flush Prefect's events to the
        # temporary server just stopped, retrying for a minute (what the issue saw).
        os._exit(128 + signum)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
