"""Bring the whole local stack up, down, or report on it."""

from __future__ import annotations

from settings import Settings
from stack.keys import ensure_reward_code_key
from stack.process import ServiceStatus
from stack.services import all_services


def up(settings: Settings) -> list[ServiceStatus]:
    """Install and start every service (idempotent); return once all of them answer."""
    ensure_reward_code_key(settings)
    services = all_services(settings)
    for service in services:
        service.install()
    for service in services:
        service.start()
    return [service.status() for service in services]


def down(settings: Settings) -> list[str]:
    """Stop every service this stack started, in reverse start order; return those stopped."""
    stopped = []
    for service in reversed(all_services(settings)):
        if service.stop():
            stopped.append(service.name)
    return stopped


def status(settings: Settings) -> list[ServiceStatus]:
    """Report every service."""
    return [service.status() for service in all_services(settings)]
