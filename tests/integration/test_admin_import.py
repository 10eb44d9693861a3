"""CSV imports through the real CLI, Kafka and the MongoDB-compatible store; the round trip of a
rejected-rows file also runs a real `loyalty worker`."""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from settings import Settings
from tests.integration.admin_helpers import (
    Isolated,
    cli,
    join,
    read_topic,
    running_worker,
    seed_customers,
    status,
)
from tests.integration.waiting import eventually
from tests.integration.worker_kit import WorkerUnderTest
from topics.codec import parse_message
from topics.names import Topics

TIERS_CSV = (
    "email{sep}tier\n"
    "ANA@example.com{sep}gold\n"  # row 2: valid, any letter case
    "nobody@example.com{sep}Gold\n"  # row 3: unknown customer
    "ben@example.com{sep}Platnum\n"  # row 4: unknown tier
    "ana@example.com{sep}Silver\n"  # row 5: repeated email
    "cat@example.com{sep}Silver\n"  # row 6: valid
)


@pytest.mark.parametrize(("bom", "sep"), [(False, ","), (True, ";")])
async def test_a_tiers_import_publishes_only_valid_rows_of_existing_customers(
    program: Isolated, unique: str, tmp_path: Path, bom: bool, sep: str
) -> None:
    ids = await seed_customers(
        program.settings, ["ana@example.com", "ben@example.com", "cat@example.com"], unique
    )
    path = tmp_path / "tiers.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + TIERS_CSV.format(sep=sep).encode())

    done = program.cli("import", "tiers", str(path), "--batch-id", f"b-{unique}", "--json")

    assert "row 3: unknown customer" in done.stderr
    assert "row 4: unknown tier 'Platnum'" in done.stderr
    assert "row 5: duplicate email: only row 2 applies" in done.stderr
    rejected = list(
        csv.reader(
            (tmp_path / "tiers.csv.rejected.csv").read_text("utf-8-sig").splitlines(), delimiter=sep
        )
    )
    assert [r[0] for r in rejected] == ["row", "3", "4", "5"]
    topic = Topics(program.settings.topic_namespace).tier_commands
    messages = await read_topic(program.settings, topic, 2)
    assert sorted(m["id"] for m in messages) == [f"b-{unique}:2", f"b-{unique}:6"]
    by_id = {m["id"]: parse_message(m) for m in messages}
    first = by_id[f"b-{unique}:2"]
    assert first.customer_id == ids["ana@example.com"]
    assert first.source == "import"
    assert first.batch is not None
    assert first.batch.suppress_notifications
    assert first.data.model_dump(include={"tier", "notify", "entry_rewards"}) == {  # type: ignore[union-attr]
        "tier": "Gold",
        "notify": False,
        "entry_rewards": False,
    }

    status = program.cli_json("import", "status", f"b-{unique}", "--json")
    assert {k: status[k] for k in ("batch_id", "rows", "published", "rejected")} == {
        "batch_id": f"b-{unique}",
        "rows": 5,
        "published": 2,
        "rejected": 3,
    }


async def test_exit_codes_follow_the_contract(program: Isolated, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("mail,level\nana@example.com,Gold\n")
    done = program.cli("import", "tiers", str(wrong), check=1)
    assert "missing columns email, tier" in done.stderr
    assert "unknown columns 'mail', 'level'" in done.stderr
    program.cli("import", "tiers", str(tmp_path / "absent.csv"), check=1)
    program.cli("import", "tiers", str(wrong), "--batch-id", "has space", check=2)
    program.cli("import", "colours", str(wrong), check=2)


async def test_a_dry_run_publishes_nothing_and_keeps_no_record(
    program: Isolated, unique: str, tmp_path: Path
) -> None:
    await seed_customers(program.settings, ["ana@example.com"], unique)
    path = tmp_path / "points.csv"
    path.write_text("email,points\nana@example.com,25\n")
    done = program.cli("import", "points", str(path), "--dry-run", "--batch-id", f"d-{unique}")
    assert "1 valid (nothing published)" in done.stderr
    program.cli("import", "status", f"d-{unique}", check=1)


POINTS_CP1252 = (
    "email;points;internal_note\r\n"
    "ana@example.com;5;plain\r\n"  # row 2: ASCII, valid in every encoding
    "ben@example.com;10;Zoë paid €5\r\n"  # row 3: not UTF-8, valid as cp1252
).encode("cp1252")


async def test_a_cp1252_file_imports_with_its_encoding_as_the_same_batch(
    program: Isolated, unique: str, tmp_path: Path
) -> None:
    ids = await seed_customers(program.settings, ["ana@example.com", "ben@example.com"], unique)
    path = tmp_path / "points.csv"
    path.write_bytes(POINTS_CP1252)

    first = program.cli("import", "points", str(path), "--json")
    assert "row 3: row is not UTF-8 text: save the file as CSV UTF-8 or import it with " in (
        " ".join(first.stderr.split())  # the console wraps long lines
    )
    assert json.loads(first.stdout)["encoding"] == "utf-8"
    again = program.cli("import", "points", str(path), "--encoding", "Windows-1252", "--json")
    report = json.loads(again.stdout)
    assert "points import of points.csv read as cp1252, batch" in again.stderr
    assert (report["encoding"], report["published"], report["rejected"]) == ("cp1252", 2, 0)
    assert report["batch_id"] == json.loads(first.stdout)["batch_id"]  # the same file's batch

    topic = Topics(program.settings.topic_namespace).adjustments
    messages = await read_topic(program.settings, topic, 3)
    batch = report["batch_id"]
    assert sorted(m["id"] for m in messages) == [f"{batch}:2", f"{batch}:2", f"{batch}:3"]
    ben = next(m for m in messages if m["id"] == f"{batch}:3")
    assert ben["customer_id"] == ids["ben@example.com"]
    assert ben["data"]["internal_note"] == "Zoë paid €5"

    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + POINTS_CP1252.decode("cp1252").encode())
    done = program.cli("import", "points", str(bom), "--encoding", "latin-1", check=1)
    assert "looks like CSV UTF-8; import it without --encoding latin-1" in " ".join(
        done.stderr.split()
    )
    done = program.cli("import", "points", str(path), "--encoding", "utf-16", check=2)
    assert "accepted: utf-8 (the default), cp1252 (or windows-1252)" in done.stderr


@pytest.fixture(scope="module")
async def worker(
    stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[WorkerUnderTest]:
    async with running_worker(stack, tmp_path_factory.mktemp("import")) as under_test:
        yield under_test


def fix(path: Path, old: str, new: str) -> Path:
    """Edit a rejected-rows file in place, as an admin would in a spreadsheet."""
    text = path.read_text()
    assert old in text, text
    path.write_text(text.replace(old, new))
    return path


async def test_a_fixed_rejected_rows_file_applies_each_row_once_under_the_first_batch_id(
    worker: WorkerUnderTest, unique: str, tmp_path: Path
) -> None:
    ids = await join(worker, unique, "ana", "ben", "cat", "dan", "eve")
    path = tmp_path / "points.csv"
    path.write_text(
        "email,points\n"
        f"ana.{unique}@example.com,100\n"  # 2: applied
        f"ben.{unique}@example.com,ten\n"  # 3: not a number, fixed to 10
        f"cat.{unique}@example.com,0\n"  # 4: zero, fixed to 30
        f"dan.{unique}@example.com,40\n"  # 5: applied
        f"eve.{unique}@example.com,1.5\n"  # 6: left wrong in the first fix, then 5
    )
    batch = f"rt-{unique}"

    async def balances(expected: dict[str, int]) -> None:
        for name, points in expected.items():
            await worker.wait_customer(
                ids[name], lambda c, p=points: c["points_balance"] == p, f"{name} has {points}"
            )

    async def settled(published: int) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def counted() -> bool:
            seen["status"] = await status(worker, batch)
            return bool(seen["status"]["done"]) and seen["status"]["published"] == published

        await eventually(counted, within=60, what="the batch done", detail=lambda: str(seen))
        return seen["status"]  # type: ignore[no-any-return]

    first = cli(worker, "import", "points", str(path), "--batch-id", batch)
    assert "row 3: points is 'ten'" in first.stderr
    await balances({"ana": 100, "dan": 40})
    assert (await settled(2))["rejected"] == 3

    once = fix(fix(path.with_name("points.csv.rejected.csv"), ",ten", ",10"), ",0\n", ",30\n")
    again = cli(worker, "import", "points", str(once), "--batch-id", batch, "--json")
    assert "rows are numbered by its row column" in again.stderr
    assert "row 6: points is '1.5'" in again.stderr  # rejected again, under its first number
    assert json.loads(again.stdout)["published"] == 2
    await balances({"ben": 10, "cat": 30})
    twice = once.with_name("points.csv.rejected.csv.rejected.csv")
    assert [line[0] for line in csv.reader(twice.read_text().splitlines())] == ["row", "6"]

    cli(worker, "import", "points", str(fix(twice, ",1.5", ",5")), "--batch-id", batch)
    await balances({"eve": 5})
    done = await settled(5)
    assert {k: done[k] for k in ("rows", "applied", "refused", "rejected", "pending")} == {
        "rows": 5,
        "applied": 5,
        "refused": 0,
        "rejected": 0,
        "pending": 0,
    }

    # Both fixed files again: nothing changes. A point added after them (same topic and key,
    # so applied after them) marks the moment the worker has seen the repeats. (`once` last:
    # its import writes `twice` anew, with eve's row as it was before the fix.)
    for repeat in (twice, once):
        cli(worker, "import", "points", str(repeat), "--batch-id", batch)
    for name in ("ben", "cat", "eve"):
        cli(worker, "adjust", "points", "-c", ids[name], "-d", "1", "--wait")
    await balances({"ana": 100, "ben": 11, "cat": 31, "dan": 40, "eve": 6})
    for name, row in (("ana", 2), ("ben", 3), ("cat", 4), ("dan", 5), ("eve", 6)):
        view = await worker.customer(ids[name])
        assert view is not None
        assert [e["cause"]["id"] for e in view["activity"]].count(f"{batch}:{row}") == 1
    repeated = await status(worker, batch)
    assert (repeated["published"], repeated["applied"], repeated["pending"]) == (5, 5, 0)
    assert repeated["runs"] == 5
