"""Admin commands and CSV imports applied by a real `loyalty worker` (own topics and database)."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from settings import Settings
from store.mongo import open_repository
from tests.integration.admin_helpers import cli, join, running_worker, status
from tests.integration.waiting import eventually
from tests.integration.worker_kit import WorkerUnderTest
from topics import names

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def worker(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WorkerUnderTest]:
    async with running_worker(stack, tmp_path_factory.mktemp("admin")) as under_test:
        yield under_test


async def test_a_tiers_import_changes_only_valid_existing_customers_without_email_or_rewards(
    worker: WorkerUnderTest, unique: str, tmp_path: Path
) -> None:
    ids = await join(worker, unique, "ana", "ben", "cat", "dan")
    removed = {
        "id": f"rm-{unique}",
        "type": "customer.removed",
        "customer_id": ids["dan"],
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": {},
    }
    await worker.send(names.CUSTOMERS, removed, ids["dan"])
    await worker.wait_customer(ids["dan"], lambda c: c["status"] == "removed", "dan removed")

    rows = [
        "email;tier",
        f"ANA.{unique}@example.com;gold",  # 2: applied
        f"nobody.{unique}@example.com;Gold",  # 3: unknown customer
        f"ben.{unique}@example.com;Platnum",  # 4: unknown tier
        f"ana.{unique}@example.com;Silver",  # 5: repeated email
        f"cat.{unique}@example.com;Silver",  # 6: applied
        f"dan.{unique}@example.com;Gold",  # 7: refused by the worker (removed customer)
    ]
    path = tmp_path / "tiers.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(rows).encode() + b"\n")
    batch = f"vip-{unique}"
    done = cli(worker, "import", "tiers", str(path), "--batch-id", batch)
    for row in ("row 3: unknown customer", "row 4: unknown tier 'Platnum'", "row 5: duplicate"):
        assert row in done.stderr

    ana = await worker.wait_customer(ids["ana"], lambda c: c["tier"] == "Gold", "ana in Gold")
    cat = await worker.wait_customer(ids["cat"], lambda c: c["tier"] == "Silver", "cat Silver")
    ben = await worker.customer(ids["ben"])
    assert ben is not None
    assert ben["tier"] != "Gold"
    assert ana["rewards"] == []  # Gold's entry rewards are not granted to imported rows
    assert cat["rewards"] == []

    seen: dict[str, Any] = {}

    async def counted() -> bool:
        seen["status"] = await status(worker, batch)
        return seen["status"]["applied"] + seen["status"]["refused"] == 3

    await eventually(
        counted, within=60, what="every published row counted", detail=lambda: str(seen)
    )
    first = seen["status"]
    assert (first["rows"], first["published"], first["applied"], first["refused"]) == (6, 3, 2, 1)
    [refusal] = first["refusals"]
    assert refusal["row"] == 7
    assert "removed" in refusal["reason"]

    changes = await worker.wait_outputs(
        names.TIER_CHANGES,
        lambda found: {m["customer_id"] for m in found} >= {ids["ana"], ids["cat"]},
        "tier.changed for ana and cat",
    )
    imported = [m for m in changes if m["customer_id"] in (ids["ana"], ids["cat"])]
    assert all(m["data"]["notified"] is False for m in imported)
    assert all(m["data"]["entry_rewards_granted"] == [] for m in imported)
    notifications = await worker.outputs(names.NOTIFICATIONS)
    assert not [n for n in notifications if n["customer_id"] in ids.values()]

    # The same file again under the same batch id changes nothing. A tier command for the same
    # customer published after it (same topic and key, so applied after it) marks the point
    # where the workers have seen the re-run.
    cli(worker, "import", "tiers", str(path), "--batch-id", batch)
    for name in ("ana", "cat"):
        cli(
            worker,
            "tier",
            "change",
            "-c",
            ids[name],
            "--tier",
            ana["tier"] if name == "ana" else "Silver",
            "--no-notify",
            "--wait",
        )
    again = await status(worker, batch)
    assert (again["published"], again["applied"], again["refused"]) == (3, 2, 1)
    assert again["runs"] == 2
    view = await worker.customer(ids["ana"])
    assert view is not None
    imported_entries = [e for e in view["activity"] if e["cause"]["id"] == f"{batch}:2"]
    assert len(imported_entries) == 1


async def test_commands_by_email_with_wait_print_the_result_or_the_refusal(
    worker: WorkerUnderTest, unique: str
) -> None:
    ids = await join(worker, unique, "eve")
    email = f"EVE.{unique}@Example.COM"
    done = cli(
        worker,
        "adjust",
        "points",
        "-e",
        email,
        "-d",
        "600",
        "--internal-note",
        "ticket 4711",
        "--customer-note",
        "Sorry!",
        "--wait",
    )
    assert "points balance 600" in done.stdout
    assert "tier Silver" in done.stdout  # crossing the threshold moved her up

    short = cli(
        worker, "reward", "redeem", "-e", email, "--reward", "voucher-20", "--wait", check=3
    )
    assert "refused" in short.stderr
    assert "short" in short.stderr or "balance" in short.stderr

    tote = cli(worker, "reward", "redeem", "-c", ids["eve"], "--reward", "tote-bag", "--wait")
    assert "points balance 300" in tote.stdout

    stamps = cli(worker, "adjust", "stamps", "-c", ids["eve"], "-d", "3", "--wait")
    assert "stamps balance 3" in stamps.stdout

    gold = cli(
        worker, "tier", "change", "-c", ids["eve"], "--tier", "gold", "--no-notify", "--wait"
    )
    assert "tier Gold" in gold.stdout

    unknown = cli(
        worker, "adjust", "points", "-e", f"nobody.{unique}@example.com", "-d", "5", check=1
    )
    assert "no customer has the email" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    given = f"crm-{unique}"
    cli(worker, "adjust", "points", "-c", ids["eve"], "-d", "7", "--id", given, "--wait")
    cli(worker, "adjust", "points", "-c", ids["eve"], "-d", "7", "--id", given)
    sentinel = cli(worker, "adjust", "points", "-c", ids["eve"], "-d", "1", "--wait")
    assert "points balance 308" in sentinel.stdout  # 300 + 7 once + 1


async def test_a_points_import_creates_lots_that_expire(
    worker: WorkerUnderTest, unique: str, tmp_path: Path
) -> None:
    ids = await join(worker, unique, "fay", "gus")
    path = tmp_path / "points.csv"
    path.write_text(
        "email,points,internal_note,customer_note,expires_in_months\n"
        f"fay.{unique}@example.com,250,migration,Welcome,3\n"
        f"gus.{unique}@example.com,40,migration,,\n"
    )
    before = datetime.now(UTC)
    cli(worker, "import", "points", str(path), "--batch-id", f"pts-{unique}")
    await worker.wait_customer(ids["fay"], lambda c: c["points_balance"] == 250, "fay 250")
    await worker.wait_customer(ids["gus"], lambda c: c["points_balance"] == 40, "gus 40")

    settings = Settings(mongo_database=worker.database)
    repository = await open_repository(settings)
    try:
        fay = await repository.get(ids["fay"])
        gus = await repository.get(ids["gus"])
    finally:
        await repository.close()
    assert fay is not None
    assert gus is not None
    [lot] = [lot for lot in fay.state.points_lots if lot.original == 250]
    assert lot.expires_at is not None
    assert before + timedelta(days=88) < lot.expires_at < datetime.now(UTC) + timedelta(days=93)
    assert fay.state.next_due_at == lot.expires_at  # the scheduler expires it then
    [gus_lot] = [lot for lot in gus.state.points_lots if lot.original == 40]
    assert gus_lot.expires_at is None or gus_lot.expires_at > lot.expires_at


async def test_customer_export_neutralises_formulas_and_list_filters(
    worker: WorkerUnderTest, unique: str, tmp_path: Path
) -> None:
    hostile = {
        f"h1-{unique}": ("-2+3@example.com", '=HYPERLINK("http://x")', "+1"),
        f"h2-{unique}": (f"h2.{unique}@example.com", "@SUM(A1)", "\tTab"),
    }
    for i, (cid, (email, first, last)) in enumerate(hostile.items()):
        address = email.replace("@", f".{unique}@") if i == 0 else email
        data = {"email": address, "first_name": first, "last_name": last}
        body = {
            "id": f"up-{cid}",
            "type": "customer.upserted",
            "customer_id": cid,
            "occurred_at": (datetime.now(UTC) - timedelta(days=2 - i)).isoformat(),
            "data": data,
        }
        await worker.send(names.CUSTOMERS, body, cid)
    for cid in hostile:
        await worker.wait_customer(cid, lambda c: c["status"] == "active", f"{cid} created")

    out = tmp_path / "customers.csv"
    cli(worker, "customer", "export", "--output", str(out))
    rows = list(csv.reader(out.read_text(encoding="utf-8").splitlines()))
    assert rows[0] == [
        "customer_id",
        "email",
        "first_name",
        "last_name",
        "status",
        "points_balance",
        "stamps_balance",
        "tier",
        "tier_expires_at",
        "lifetime_spend",
    ]
    mine = {row[0]: row for row in rows[1:] if row[0] in hostile}
    assert set(mine) == set(hostile)
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row
    assert mine[f"h1-{unique}"][1:4] == [
        f"'-2+3.{unique}@example.com",
        '\'=HYPERLINK("http://x")',
        "'+1",
    ]

    listed = json.loads(cli(worker, "customer", "list", "--email", unique.upper(), "--json").stdout)
    assert [c["customer_id"] for c in listed["customers"]][:2] == [f"h2-{unique}", f"h1-{unique}"]
    page = json.loads(
        cli(worker, "customer", "list", "--email", f"h2.{unique}", "-n", "1", "--json").stdout
    )
    assert [c["customer_id"] for c in page["customers"]] == [f"h2-{unique}"]


async def test_a_larger_file_imports_end_to_end_with_matching_status_counts(
    worker: WorkerUnderTest, unique: str, tmp_path: Path
) -> None:
    names_ = [f"m{i:03d}" for i in range(120)]
    ids = await join(worker, unique, *names_)
    tiers = ("Bronze", "silver", "GOLD", "Platinum")
    rows = ["email,tier"]
    expected: dict[str, str] = {}
    for i, name in enumerate(names_):
        rows.append(f"{name}.{unique}@example.com,{tiers[i % 4]}")
        expected[ids[name]] = tiers[i % 4].title()
    rows += [f"ghost{i}.{unique}@example.com,Gold" for i in range(200)]  # unknown customers
    rows += [f"{name}.{unique}@example.com,Gold" for name in names_[:80]]  # repeated emails
    path = tmp_path / "many.csv"
    path.write_text("\n".join(rows) + "\n")
    batch = f"many-{unique}"
    report = json.loads(
        cli(worker, "import", "tiers", str(path), "--batch-id", batch, "--json").stdout
    )
    assert (
        report["rows"],
        report["published"],
        report["unknown_customers"],
        report["duplicates"],
    ) == (
        400,
        120,
        200,
        80,
    )

    seen: dict[str, Any] = {}

    async def applied() -> bool:
        seen["status"] = await status(worker, batch)
        return seen["status"]["applied"] + seen["status"]["refused"] == 120

    await eventually(applied, within=120, what="all 120 rows applied", detail=lambda: str(seen))
    assert seen["status"]["refused"] == 0
    assert seen["status"]["done"] is True
    for cid, tier in list(expected.items())[::17]:
        view = await worker.customer(cid)
        assert view is not None
        assert view["tier"] == tier
