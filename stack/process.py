"""Start, find and stop the stack's server processes by PID file; wait on conditions."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class StackError(Exception):
    """Something the user can fix stopped the stack; the message says what to do."""


@dataclass(frozen=True)
class ServiceStatus:
    """What ``loyalty stack status`` prints for one service."""

    name: str
    port: int
    data_dir: Path
    pid: int | None
    healthy: bool
    detail: str = ""


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """Return True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port nothing listens on right now (the OS picks it; bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def read_pid(pid_file: Path) -> int | None:
    """Return the PID recorded in pid_file if that process is still alive, else None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    # A zombie still answers signal 0; treat it as gone.
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        if stat.read_text().split(") ", 1)[1].startswith("Z"):
            return None
    return pid


def spawn(
    cmd: Sequence[str],
    *,
    pid_file: Path,
    log_file: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start cmd detached in its own session, logging to log_file; record its PID."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(  # argument list, no shell
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def stop(pid_file: Path, *, timeout: float = 20.0) -> bool:
    """Stop the process group recorded in pid_file (TERM, then KILL); True if one was running."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    if not wait_for(lambda: read_pid(pid_file) is None, timeout=timeout, interval=0.2):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        wait_for(lambda: read_pid(pid_file) is None, timeout=5.0, interval=0.1)
    pid_file.unlink(missing_ok=True)
    return True


def wait_for(condition: Callable[[], bool], *, timeout: float, interval: float = 0.25) -> bool:
    """Poll condition until it is true or timeout seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 20) -> str:
    """Return the last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
