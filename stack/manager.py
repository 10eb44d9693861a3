"""Bring the whole local stack up, down, or report on it."""

from __future__ import annotations

import json
from collections import Counter

from settings import ENV_PREFIX, PORTS_FILE, Settings, recorded_ports
from stack.keys import ensure_reward_code_key
from stack.process import ServiceStatus, StackError, port_open
from stack.services import Service, all_services


def variable(setting: str) -> str:
    """Return the environment variable that sets a setting (``LOYALTY_KAFKA_PORT``)."""
    return f"{ENV_PREFIX}{setting.upper()}"


def check_ports(settings: Settings, services: list[Service]) -> None:
    """Refuse, before anything starts, ports that clash, are taken, or move a running service."""
    wanted = [(name, port) for service in services for name, port in service.ports.items()]
    clashes = [port for port, count in Counter(p for _, p in wanted).items() if count > 1]
    if clashes:
        names = ", ".join(variable(n) for n, p in wanted if p == clashes[0])
        raise StackError(f"port {clashes[0]} is set for more than one service ({names})")
    recorded = recorded_ports(settings.stack_dir)
    for service in services:
        running = service.running()
        for name, port in service.ports.items():
            was = recorded.get(name)
            if running and was is not None and was != port:
                raise StackError(
                    f"{service.name} of the stack in {settings.stack_dir} runs on port {was}, "
                    f"not {port} as {variable(name)} asks; run `loyalty stack down` first to "
                    f"move it, or unset {variable(name)}"
                )
            if not running and port_open(port):
                raise StackError(
                    f"port {port} ({service.name}) is in use by another program; "
                    f"set {variable(name)} to a free port"
                )


def record_ports(settings: Settings, services: list[Service]) -> None:
    """Write the ports the stack runs on, so later calls without settings find it."""
    ports = {name: port for service in services for name, port in service.ports.items()}
    path = settings.stack_dir / PORTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ports, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def up(settings: Settings) -> list[ServiceStatus]:
    """Install and start every service (idempotent); return once all of them answer.

    When one service fails, those this call started are stopped again: no half-started stack.
    """
    services = all_services(settings)
    check_ports(settings, services)
    ensure_reward_code_key(settings)
    for service in services:
        service.install()
    started: list[Service] = []
    try:
        for service in services:
            if not service.running():
                # Listed before it starts: one that never answers is stopped again too.
                started.append(service)
            service.start()
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise
    record_ports(settings, services)
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
