"""One worked example per command, shown as the last line of its ``--help``."""

from __future__ import annotations

from collections.abc import Iterator

import typer
from typer.models import CommandInfo

EXAMPLES: dict[str, str] = {
    "demo": "loyalty demo",
    "worker": "loyalty worker --only orders,customers",
    "consumers": "loyalty consumers --only notifier",
    "config show": "loyalty config show --json",
    "stack up": "LOYALTY_KAFKA_PORT=29092 loyalty stack up",
    "stack down": "loyalty stack down",
    "stack status": "cd docs && loyalty stack status",
    "bench decide": "loyalty bench decide --orders 0,1000 --events 500",
    "bench notify": "loyalty bench notify --emails 500 --rounds 1",
    "bench import": "loyalty bench import --rows 10000 --customers 1000 --unknown 1000",
    "bench pipeline": "loyalty bench pipeline --events 5000 --customers 500",
    "bench soak": "loyalty bench soak --minutes 2 --sample-seconds 10 --warmup-minutes 0.5",
    "program show": "loyalty program show --file program.example.yaml --json",
    "schemas export": "loyalty schemas export --check",
    "import tiers": "loyalty import tiers demo/tiers.csv --dry-run",
    "import points": "loyalty import points points.csv --batch-id spring-bonus",
    "import stamps": "loyalty import stamps stamps.csv --actor ops@example.com",
    "import template": "loyalty import template tiers > tiers.csv",
    "import status": "loyalty import status spring-bonus --json",
    "adjust points": "loyalty adjust points --email alice@example.com --delta 150 --wait",
    "adjust stamps": "loyalty adjust stamps --customer c-42 --delta -1 --internal-note 'typo'",
    "tier change": "loyalty tier change --email bob@example.com --tier Gold --no-notify --wait",
    "tier manage": "loyalty tier manage --action renew --strategy rules --group vip",
    "reward check": "loyalty reward check RC-7KQ2-M9XD --json",
    "reward rebuild": "loyalty reward rebuild",
    "reward redeem": "loyalty reward redeem --customer c-42 --reward tote-bag --wait",
    "reward revoke": "loyalty reward revoke --customer c-42 --grant g-1a2b --wait",
    "analytics summary": "loyalty analytics summary --json",
    "customer show": "loyalty customer show c-42 --json",
    "customer list": "loyalty customer list --tier gold --limit 20",
    "customer export": "loyalty customer export --status active -o customers.jsonl",
    "customer forget": "loyalty customer forget c-42 --reason 'erasure request' --wait",
}


def commands(app: typer.Typer, path: tuple[str, ...] = ()) -> Iterator[tuple[str, CommandInfo]]:
    """Yield every command of the app with its full path (``stack up``), each once."""
    seen: set[str] = set()
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__.replace("_", "-") if info.callback else "")
        full = " ".join((*path, name))
        if full not in seen:
            seen.add(full)
            yield full, info
    for group in app.registered_groups:
        if group.typer_instance is None or group.name is None:
            continue
        for full, info in commands(group.typer_instance, (*path, group.name)):
            if full not in seen:
                seen.add(full)
                yield full, info


def attach(app: typer.Typer) -> None:
    """Give every command its example as the help's epilog (a command's own epilog is kept)."""
    for path, info in commands(app):
        example = EXAMPLES.get(path)
        if example is not None and not info.epilog:
            # \b keeps click from re-wrapping the example over two lines.
            info.epilog = f"\b\nExample: {example}"
