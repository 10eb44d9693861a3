"""The local SMTP sink service: aiosmtpd in a subprocess writing mail under the stack dir."""

from __future__ import annotations

import smtplib
import sys

from settings import Settings
from stack.process import ServiceStatus, StackError, port_open, read_pid, spawn, tail, wait_for
from stack.process import stop as stop_process


class SmtpService:
    """aiosmtpd on 127.0.0.1:smtp_port; every received message becomes a file in the mail dir."""

    name = "smtp"

    def __init__(self, settings: Settings) -> None:
        self.port = settings.smtp_port
        self.ports = {"smtp_port": self.port}
        self.start_timeout = settings.stack_start_timeout
        self.home = settings.stack_dir / "smtp"
        self.mail_dir = settings.mail_path
        self.pid_file = self.home / "smtp.pid"
        self.log_file = self.home / "smtp.log"

    def install(self) -> None:
        """Check that aiosmtpd is importable (it is a dev dependency; nothing to download)."""
        try:
            import aiosmtpd  # noqa: F401, PLC0415
        except ImportError:
            raise StackError(
                "aiosmtpd is not installed; run `pip install -e '.[dev]'` (or `make install`)"
            ) from None

    def running(self) -> bool:
        """Return True when this stack's sink process is alive."""
        return read_pid(self.pid_file) is not None

    def healthy(self) -> bool:
        """Return True when the server answers an SMTP NOOP."""
        if not port_open(self.port):
            return False
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=2) as client:
                code, _ = client.noop()
        except (OSError, smtplib.SMTPException):
            return False
        return code == 250

    def start(self) -> None:
        """Start the sink unless ours is already running; wait until it answers."""
        pid = read_pid(self.pid_file)
        if pid is not None:
            # Ours is running: healthy, or still binding its port.
            if wait_for(self.healthy, timeout=self.start_timeout):
                return
            raise StackError(
                f"the SMTP sink (PID {pid}) runs but does not answer on port {self.port}; "
                f"run `loyalty stack down` and retry. Log {self.log_file}:\n{tail(self.log_file)}"
            )
        if port_open(self.port):
            raise StackError(
                f"port {self.port} is in use by another program; "
                "set LOYALTY_SMTP_PORT to a free port"
            )
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "stack.smtp_sink",
            "--port",
            str(self.port),
            "--mail-dir",
            str(self.mail_dir.resolve()),
        ]
        spawn(cmd, pid_file=self.pid_file, log_file=self.log_file, cwd=self.home.resolve())
        if not wait_for(self.healthy, timeout=self.start_timeout):
            raise StackError(
                f"the SMTP sink did not answer on port {self.port} within "
                f"{self.start_timeout:.0f}s; "
                f"log {self.log_file}:\n{tail(self.log_file)}"
            )

    def stop(self) -> bool:
        """Stop the sink this stack started."""
        return stop_process(self.pid_file)

    def status(self) -> ServiceStatus:
        """Report port, mail dir, PID and health."""
        count = len(list(self.mail_dir.glob("*.eml"))) if self.mail_dir.exists() else 0
        pid = read_pid(self.pid_file)
        answers = self.healthy()
        detail = f"aiosmtpd, {count} message(s) received"
        if pid is None and answers:
            # Something answers, but not a sink of this stack dir: its mail is not ours to read.
            detail += f", port {self.port} is used by another program"
        return ServiceStatus(
            name=self.name,
            port=self.port,
            data_dir=self.mail_dir,
            pid=pid,
            healthy=pid is not None and answers,
            detail=detail,
        )
