"""The local MongoDB-compatible server: SecantusDB (``secantusd-py``) under the stack dir.

Why SecantusDB and not FerretDB: docs/adr/0001-local-stack.md. The server is a Python
dependency of the project (``secantusdb`` in the dev extra), so there is nothing to download:
``install`` only checks that its launcher is there.
"""

from __future__ import annotations

import shutil
import sys
from importlib import metadata
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from settings import Settings
from stack.process import ServiceStatus, StackError, port_open, read_pid, spawn, tail, wait_for
from stack.process import stop as stop_process

LAUNCHER = "secantusd-py"


def find_launcher() -> Path | None:
    """Return the SecantusDB server launcher next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / LAUNCHER
    if beside.is_file():
        return beside
    found = shutil.which(LAUNCHER)
    return Path(found) if found else None


def package_version() -> str | None:
    """Return the installed secantusdb version, or None when it is not installed."""
    try:
        return metadata.version("secantusdb")
    except metadata.PackageNotFoundError:
        return None


class MongoService:
    """SecantusDB on 127.0.0.1:mongo_port with its WiredTiger files in <stack_dir>/mongo/data."""

    name = "mongo"

    def __init__(self, settings: Settings) -> None:
        self.port = settings.mongo_port
        self.ports = {"mongo_port": self.port}
        self.start_timeout = settings.stack_start_timeout
        self.home = settings.stack_dir / "mongo"
        self.data_dir = self.home / "data"
        self.pid_file = self.home / "mongo.pid"
        self.log_file = self.home / "mongo.log"
        self.port_file = self.home / "mongo.port"

    @property
    def uri(self) -> str:
        """The connection string of this local server (retryable writes off, see the ADR)."""
        return f"mongodb://127.0.0.1:{self.port}/?retryWrites=false&directConnection=true"

    def install(self) -> None:
        """Check that SecantusDB is installed (a dev dependency; nothing to download)."""
        if package_version() is None or find_launcher() is None:
            raise StackError(
                f"SecantusDB ({LAUNCHER}) is not installed; "
                "run `pip install -e '.[dev]'` (or `make install`)"
            )

    def _command(self, command: str) -> dict[str, object] | None:
        """Run one admin command on the server; None when it does not answer."""
        if not port_open(self.port):
            return None
        client: MongoClient[dict[str, object]] = MongoClient(
            self.uri, serverSelectionTimeoutMS=1500, connectTimeoutMS=1500, socketTimeoutMS=5000
        )
        try:
            return client.admin.command(command)
        except PyMongoError:
            return None
        finally:
            client.close()

    def healthy(self) -> bool:
        """Return True when the server answers a real ``ping``."""
        reply = self._command("ping")
        return reply is not None and reply.get("ok") in (1, 1.0)

    def server_version(self) -> str | None:
        """Return the MongoDB version the server reports, or None when it does not answer."""
        reply = self._command("buildInfo")
        return None if reply is None else str(reply.get("version", "?"))

    def running(self) -> bool:
        """Return True when this stack's server process is alive."""
        return read_pid(self.pid_file) is not None

    def recorded_port(self) -> int | None:
        """Return the port the running server of this stack dir was started on, if known."""
        try:
            return int(self.port_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def start(self) -> None:
        """Start the server unless ours is already running; return once it answers ``ping``."""
        pid = read_pid(self.pid_file)
        running_on = self.recorded_port()
        if pid is not None and running_on not in (None, self.port):
            raise StackError(
                f"this stack's MongoDB-compatible server (PID {pid}) runs on port {running_on}, "
                f"not {self.port}; run `loyalty stack down` first to move it"
            )
        if pid is not None:
            # Ours is running: healthy, or perhaps still opening its files.
            if wait_for(self.healthy, timeout=self.start_timeout, interval=0.25):
                return
            raise StackError(
                f"the MongoDB-compatible server (PID {pid}) runs but does not answer on port "
                f"{self.port}; run `loyalty stack down` and retry. Log {self.log_file}:\n"
                f"{tail(self.log_file)}"
            )
        if port_open(self.port):
            raise StackError(
                f"port {self.port} is in use by another program; "
                "set LOYALTY_MONGO_PORT to a free port"
            )
        self.install()
        launcher = find_launcher()
        assert launcher is not None  # install() checked
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(launcher),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--storage-path", str(self.data_dir.resolve()),
            "--log-level", "WARNING",
        ]  # fmt: skip
        # --config is not passed, so the launcher would read ./secantusd.toml or
        # ~/.secantus/secantusd.toml if one exists; run it from the stack dir to avoid the first.
        spawn(cmd, pid_file=self.pid_file, log_file=self.log_file, cwd=self.home.resolve())
        self.port_file.write_text(f"{self.port}\n")

        def answered_or_died() -> bool:
            return read_pid(self.pid_file) is None or self.healthy()

        wait_for(answered_or_died, timeout=self.start_timeout, interval=0.2)
        if read_pid(self.pid_file) is None:
            raise StackError(
                f"the MongoDB-compatible server exited at start-up; log {self.log_file}:\n"
                f"{tail(self.log_file)}"
            )
        if not self.healthy():
            raise StackError(
                f"the MongoDB-compatible server did not answer ping on port {self.port} within "
                f"{self.start_timeout:.0f}s; log {self.log_file}:\n{tail(self.log_file)}"
            )

    def stop(self) -> bool:
        """Stop the server this stack started."""
        stopped = stop_process(self.pid_file)
        self.port_file.unlink(missing_ok=True)
        return stopped

    def status(self) -> ServiceStatus:
        """Report port, data dir, PID, health and versions."""
        reported = self.server_version()
        pid = read_pid(self.pid_file)
        healthy = pid is not None and reported is not None and self.healthy()
        detail = f"SecantusDB {package_version() or '(not installed)'}"
        if reported is not None:
            detail += f", reports MongoDB {reported}"
            if pid is None:
                detail += f", port {self.port} is used by another program"
        return ServiceStatus(
            name=self.name,
            port=self.port,
            data_dir=self.data_dir,
            pid=pid,
            healthy=healthy,
            detail=detail,
        )
