"""A `loyalty worker` child process for the demo, the pipeline benchmark and the tests.

The process runs in its own session with the settings it was given (passed as ``LOYALTY_*``
variables), logs to a file, is ready when its ``GET /health`` answers 200, and is stopped by
its PID only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from settings import ENV_PREFIX, Settings

START_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0


def worker_env(settings: Settings) -> dict[str, str]:
    """Return the LOYALTY_* variables that make a child worker use exactly these settings."""
    env = {
        "KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MONGO_URI": settings.mongo_uri,
        "MONGO_DATABASE": settings.mongo_database,
        "TOPIC_NAMESPACE": settings.topic_namespace,
        "TOPIC_PARTITIONS": str(settings.topic_partitions),
        "PROGRAM_FILE": str(settings.program_file.resolve()),
        "STACK_DIR": str(settings.stack_dir.resolve()),
        "WEB_HOST": settings.web_host,
        "WEB_PORT": str(settings.web_port),
        "LOG_LEVEL": settings.log_level,
        "LOG_JSON": "true" if settings.log_json else "false",
        "WORKER_BATCH_SIZE": str(settings.worker_batch_size),
        "WORKER_BATCH_WITHIN": str(settings.worker_batch_within),
    }
    if settings.reward_code_key is not None:
        env["REWARD_CODE_KEY"] = settings.reward_code_key.get_secret_value()
    return {ENV_PREFIX + name: value for name, value in env.items()}


class WorkerError(Exception):
    """The worker process did not start or answer; the message says where its log is."""


class WorkerProcess:
    """One `loyalty worker` process started by this program."""

    command: tuple[str, ...] = ("worker",)
    """The `loyalty` subcommand the process runs."""

    def __init__(
        self,
        settings: Settings,
        *,
        log_file: Path,
        workdir: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.log_file = log_file
        self.workdir = workdir or log_file.parent
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """The base URL of the worker's web server."""
        return f"http://{self.settings.web_host}:{self.settings.web_port}"

    @property
    def pid(self) -> int | None:
        """The PID of the running process, None when it is not running."""
        return self.process.pid if self.running and self.process is not None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the process (again, after it stopped), logging to the log file."""
        if self.running:
            raise WorkerError(f"the worker (PID {self.pid}) is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        launcher = Path(sys.executable).parent / "loyalty"
        env = {**os.environ, **worker_env(self.settings), **self.extra_env}
        with self.log_file.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            # cwd: faust keeps a data directory in the working directory; one per process.
            self.process = subprocess.Popen(  # argument list, no shell
                [str(launcher), *self.command],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.workdir,
                env=env,
            )

    def tail(self, lines: int = 30) -> str:
        """Return the end of the log, for error messages."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def health(self) -> int | None:
        """Return the HTTP status of GET /health, None when nothing answers."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:  # noqa: S310 - our own http URL
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError):
            return None

    async def wait_ready(self, within: float = START_TIMEOUT) -> None:
        """Return once /health answers 200; raise WorkerError if the process exits or hangs."""
        deadline = time.monotonic() + within
        while True:
            if not self.running:
                raise WorkerError(
                    f"the worker exited during start-up; log {self.log_file}:\n{self.tail()}"
                )
            if await asyncio.to_thread(self.health) == 200:
                return
            if time.monotonic() > deadline:
                raise WorkerError(
                    f"the worker was not ready on {self.url}/health within {within:.0f} s; "
                    f"log {self.log_file}:\n{self.tail()}"
                )
            await asyncio.sleep(0.2)

    def signal(self, signum: int) -> None:
        """Signal the process group (the process leads its own session, alone)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the process and reap it (a crash: nothing is finished or flushed)."""
        self.signal(signal.SIGKILL)
        self.wait(10.0)

    def stop(self, within: float = STOP_TIMEOUT) -> None:
        """SIGTERM the process (it finishes its batch and commits); SIGKILL it after `within` s."""
        self.signal(signal.SIGTERM)
        if not self.wait(within):
            self.kill()

    def wait(self, within: float) -> bool:
        """Wait up to `within` s for the process to exit; True when it is not running."""
        if self.process is None:
            return True
        try:
            self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            return False
        return True
