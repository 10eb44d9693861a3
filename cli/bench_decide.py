"""``loyalty bench decide``: the rules' cost per event, for short and long customer histories.

For each history length a customer is built through the rules themselves (one event every 12
hours: orders with one coffee each, so stamp cards fill, and every tenth event a partial refund
of the last order). Then the customer's next order is decided many times over on that same
state, each time as if it were the one next order (a new customer has nothing to refund, so
orders are what compares across history lengths), and ``decide`` alone is timed, in several
interleaved runs of which the fastest counts. The state is handed over the way the store hands
it to the rules (the hydration seam of DESIGN.md invariant 7): the most recent ``hot_orders``
order records, older ones archived, and no transient ``known_ids``; so the figures are the
rules' cost and not the cost of a list the store never loads.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import platform
import pstats
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.console import make_console
from models.decide import decide
from models.messages import InputMessage
from models.program import Program, ProgramError
from models.state import CustomerState
from program_file import load_program
from settings import SettingsError, get_settings
from topics.codec import parse_message

console = make_console()
errors = make_console(stderr=True)

CUSTOMER = "bench-customer"
START = datetime(2010, 1, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2099, 1, 1, tzinfo=UTC)
"""Processing time: after every event, so none is refused as dated in the future."""
STEP = timedelta(hours=12)
CODE_KEY = "bench-reward-code-key-not-a-secret"
REFUND_EVERY = 10


@dataclass(frozen=True)
class DecideResult:
    """What one history length measured."""

    prior_orders: int
    events: int
    seconds: float
    state_bytes: int
    lots: int
    grants: int
    buckets: int
    hot_orders: int

    @property
    def per_second(self) -> float:
        """Events decided per second."""
        return self.events / self.seconds if self.seconds else float("inf")


class Timeline:
    """Deterministic messages for one customer: ids, times and amounts from a seed."""

    def __init__(self, program: Program, seed: int = 7) -> None:
        self.program = program
        self.random = random.Random(seed)  # noqa: S311 - amounts of a benchmark, not secrets
        self.count = 0
        self.orders = 0
        self.moment = START

    def _message(self, kind: str, data: dict[str, Any]) -> InputMessage:
        self.count += 1
        return parse_message(
            {
                "id": f"bench-{self.count}",
                "type": kind,
                "customer_id": CUSTOMER,
                "occurred_at": self.moment.isoformat(),
                "data": data,
            }
        )

    def join(self) -> InputMessage:
        """The customer joins."""
        return self._message("customer.upserted", {"email": "bench@example.com"})

    def refund(self, order: int) -> InputMessage:
        """A partial refund (1.00) of the ``order``-th order."""
        return self._message(
            "order.refunded",
            {"order_id": f"o-{order}", "refund_id": f"r-{self.count}", "amount": "1.00"},
        )

    def next(self) -> InputMessage:
        """The next event: an order, or every tenth a partial refund of the last order."""
        self.moment += STEP
        if self.orders and self.count % REFUND_EVERY == 0:
            return self.refund(self.orders - 1)
        self.orders += 1
        total = Decimal(self.random.randint(500, 6000)) / 100
        coffee = {"sku": "latte", "quantity": 1, "unit_price": "3.20", "categories": ["coffee"]}
        return self._message(
            "order.paid",
            {
                "order_id": f"o-{self.orders - 1}",
                "total": str(total),
                "currency": self.program.currency,
                "items": [coffee],
            },
        )


def hand_over(state: CustomerState, hot_orders: int) -> CustomerState:
    """The state as the store loads it: the ``hot_orders`` most recent order records, no
    transient ``known_ids`` (the store fills them per batch from its archive, none here)."""
    recent = sorted(state.orders, key=lambda o: (o.paid_at, o.order_id))[-hot_orders:]
    return state.model_copy(update={"orders": tuple(recent), "known_ids": frozenset()})


def build(program: Program, orders: int, hot_orders: int) -> tuple[CustomerState, Timeline]:
    """A customer with ``orders`` prior orders, built by the rules."""
    timeline = Timeline(program)
    state = decide(None, timeline.join(), program, NOW, code_key=CODE_KEY).state
    assert state is not None  # a join always creates the customer
    while timeline.orders < orders:
        decided = decide(state, timeline.next(), program, NOW, code_key=CODE_KEY).state
        assert decided is not None
        state = hand_over(decided, hot_orders)
    return state, timeline


@dataclass(frozen=True)
class Customer:
    """A built customer and the next events to decide for them."""

    orders: int
    state: CustomerState
    messages: tuple[InputMessage, ...]


def prepare(program: Program, orders: int, events: int, hot_orders: int) -> Customer:
    """A customer with ``orders`` prior orders and ``events`` candidate next events."""
    state, timeline = build(program, orders, hot_orders)
    moment = timeline.moment
    messages: list[InputMessage] = []
    while len(messages) < events:
        timeline.moment = moment  # the customer's next order, whichever it is
        message = timeline.next()
        if message.type == "order.paid":  # a new customer has nothing to refund: compare orders
            messages.append(message)
    return Customer(orders=orders, state=state, messages=tuple(messages))


def time_once(program: Program, customer: Customer, profile: cProfile.Profile | None) -> float:
    """Seconds spent in ``decide`` for every candidate event, each on the same state.

    Each event is decided on the customer's state as built, so every one measures exactly
    that history length (keeping the results would grow the history as the run went).
    """
    elapsed = 0.0
    state = customer.state
    if profile is not None:
        profile.enable()
    for message in customer.messages:
        started = time.perf_counter()
        decide(state, message, program, NOW, code_key=CODE_KEY)
        elapsed += time.perf_counter() - started
    if profile is not None:
        profile.disable()
    return elapsed


def result(program: Program, customer: Customer, seconds: float) -> DecideResult:
    """The figures for one customer: best time, and the size of the state decide returns."""
    decided = decide(customer.state, customer.messages[0], program, NOW, code_key=CODE_KEY)
    assert decided.state is not None
    document = json.dumps(decided.state.model_dump(mode="json"), separators=(",", ":"))
    return DecideResult(
        prior_orders=customer.orders,
        events=len(customer.messages),
        seconds=seconds,
        state_bytes=len(document.encode("utf-8")),
        lots=len(decided.state.points_lots),
        grants=len(decided.state.rewards),
        buckets=len(decided.state.qualifying.periods),
        hot_orders=len(decided.state.orders),
    )


def measure(program: Program, customers: list[Customer], repeats: int) -> list[DecideResult]:
    """Time every customer ``repeats`` times, interleaved; keep each one's fastest run.

    The fastest run is the one least disturbed by other processes on the machine, and
    interleaving exposes every history length to the same disturbances.
    """
    best = [float("inf")] * len(customers)
    for _ in range(repeats):
        for index, customer in enumerate(customers):
            best[index] = min(best[index], time_once(program, customer, None))
    return [result(program, c, seconds) for c, seconds in zip(customers, best, strict=True)]


def profile_text(profile: cProfile.Profile, limit: int = 15) -> str:
    """The functions with the most cumulative time, as text."""
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


def _program(file: Path | None) -> Program:
    try:
        path = file if file is not None else get_settings().program_file
        return load_program(path)
    except (ProgramError, SettingsError) as exc:
        errors.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(1) from None


def _history_lengths(text: str) -> list[int]:
    try:
        lengths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: give whole numbers separated by commas, like 0,100,1000"
        ) from None
    if not lengths or any(n < 0 for n in lengths):
        raise typer.BadParameter(f"{text!r}: give one or more numbers >= 0, like 0,100,1000")
    return lengths


def machine() -> str:
    """One line about where the numbers were taken."""
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{python}, {os.cpu_count()} CPUs, {platform.machine()}, {platform.platform()}"


def decide_bench(
    orders: Annotated[
        str, typer.Option(help="Prior orders per customer to measure, comma separated.")
    ] = "0,100,1000,10000",
    events: Annotated[
        int, typer.Option(min=1, help="Events decided and timed per customer.")
    ] = 2000,
    repeats: Annotated[
        int, typer.Option(min=1, help="Runs per customer, interleaved; the fastest counts.")
    ] = 5,
    hot_orders: Annotated[
        int,
        typer.Option(min=1, help="Order records handed to the rules (the store's hot orders)."),
    ] = 100,
    program_file: Annotated[
        Path | None,
        typer.Option("--program", help="Program file (default: LOYALTY_PROGRAM_FILE)."),
    ] = None,
    profile: Annotated[
        bool, typer.Option(help="Profile the longest history and print where the time goes.")
    ] = False,
) -> None:
    """Time decide() for customers with short and long histories; report events/s and size."""
    lengths = _history_lengths(orders)
    program = _program(program_file)
    console.print(
        f"machine: {machine()}; {events} events per customer, best of {repeats} runs, "
        f"{hot_orders} hot orders"
    )
    customers = []
    for length in lengths:
        with console.status(f"building a customer with {length:,} orders ..."):
            customers.append(prepare(program, length, events, hot_orders))
    with console.status("timing ..."):
        results = measure(program, customers, repeats)
    ceiling = results[0].per_second
    table = Table(
        "prior orders",
        "events/s",
        f"vs {results[0].prior_orders} orders",
        "state bytes",
        "lots",
        "grants",
        "period buckets",
        "order records",
        title="loyalty bench decide",
    )
    for result in results:
        table.add_row(
            f"{result.prior_orders:,}",
            f"{result.per_second:,.0f}",
            f"{result.per_second / ceiling:.2f}",
            f"{result.state_bytes:,}",
            str(result.lots),
            str(result.grants),
            str(result.buckets),
            str(result.hot_orders),
        )
    console.print(table)
    longest = max(results, key=lambda r: r.prior_orders)
    ratio = longest.per_second / ceiling
    verdict = "meets" if ratio >= 0.5 else "misses"
    console.print(
        f"{longest.prior_orders:,} prior orders run at {ratio:.2f} of the "
        f"{results[0].prior_orders}-order rate ({verdict} the target of at least 0.50)"
    )
    if profile:
        profiler = cProfile.Profile()
        time_once(program, max(customers, key=lambda c: c.orders), profiler)
        console.print(profile_text(profiler), markup=False, highlight=False)
