"""CSV imports through the real CLI, Kafka and the MongoDB-compatible store (no worker needed)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.integration.admin_helpers import Isolated, read_topic, seed_customers
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
