"""A `loyalty consumers` child process (coupon registry and email notifier) for the demo."""

from __future__ import annotations

from pathlib import Path

from settings import Settings
from stack.worker import WorkerProcess


class ConsumersProcess(WorkerProcess):
    """`loyalty consumers --only rewards,notifier`, ready when its own /health answers 200."""

    command = ("consumers", "--only", "rewards,notifier")

    def __init__(self, settings: Settings, *, log_file: Path, workdir: Path | None = None) -> None:
        super().__init__(
            settings,
            log_file=log_file,
            workdir=workdir,
            extra_env={
                "LOYALTY_CONSUMERS_WEB_PORT": str(settings.consumers_web_port),
                "LOYALTY_SMTP_HOST": settings.smtp_host,
                "LOYALTY_SMTP_PORT": str(settings.smtp_port),
                "LOYALTY_MAIL_FROM": settings.mail_from,
            },
        )

    @property
    def url(self) -> str:
        """The base URL of the consumers' web server."""
        return f"http://{self.settings.web_host}:{self.settings.consumers_web_port}"
