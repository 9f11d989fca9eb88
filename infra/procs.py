"""Process and port plumbing for the local service stack.

``infra.stack`` launches its services (S3, MLflow, Prefect, a PostgreSQL cluster) as child
processes and has to find free ports, probe them until a service answers, tell whether a child is
still alive, stop a whole process group and quote the end of a log when something fails. These
helpers know nothing about any particular service, so they live here, apart from the launcher;
``StackError``, the one error every part of the stack raises, lives here too so that
``infra.postgres`` can raise it without importing the launcher.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from infra.errors import ExitCode, ServiceError, UserError


class StackError(ServiceError, RuntimeError):
    """A service could not be started, or did not become healthy in time."""

    exit_code = ExitCode.FAILED


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_listen(host: str, port: int) -> None:
    """Refuse, in one line, an address this machine cannot listen on, before a server tries."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError):
        raise UserError(f"--host {host!r} is neither an IP address nor a known host name") from None
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(
                    f"port {port} on {host} is in use; pick another with --port"
                ) from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise UserError(
                    f"{host} is not an address of this machine; listen on one of its own "
                    "(--host 127.0.0.1, or 0.0.0.0 for every interface)"
                ) from None
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _reaches(send: Callable[[int, int], None], target: int) -> bool:
    """Whether signal 0 reaches ``target`` (a process or group that exists, even if not ours)."""
    try:
        send(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    return True


def alive(pid: int) -> bool:
    if not _reaches(os.kill, pid):
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap our own zombie child
        if done == pid:
            return False
    return True


def terminate_group(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM the process group ``pid`` leads (servers fork workers), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid) and not _reaches(os.killpg, pid):
                return
            time.sleep(0.2)


def tail(path: str, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
