"""The shape every local-stack service has, and the ordered list of them."""

from __future__ import annotations

from typing import Protocol

from settings import Settings
from stack.kafka import KafkaService
from stack.mongo import MongoService
from stack.process import ServiceStatus
from stack.smtp import SmtpService


class Service(Protocol):
    """One server of the local stack, managed through a PID file under the stack dir."""

    name: str
    ports: dict[str, int]
    """The port settings this service listens on, by setting name (``kafka_port``)."""

    def running(self) -> bool:
        """Return True when this stack's process for the service is alive (by PID file)."""

    def install(self) -> None:
        """Download or build what the service needs into the stack dir (cached; idempotent)."""

    def start(self) -> None:
        """Start the server unless it is already running and healthy; return once it answers."""

    def stop(self) -> bool:
        """Stop the server this stack started (by PID file); True if one was running."""

    def status(self) -> ServiceStatus:
        """Report port, data dir, PID and health."""


def all_services(settings: Settings) -> list[Service]:
    """Return the stack's services in start order."""
    return [MongoService(settings), SmtpService(settings), KafkaService(settings)]
