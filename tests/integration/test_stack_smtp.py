"""The local SMTP sink receives real mail sent with aiosmtplib and writes it to the mail dir."""

from __future__ import annotations

import asyncio
import email
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from stack.process import read_pid
from stack.smtp import SmtpService


def _find_mail(mail_dir: Path, needle: str) -> Path | None:
    for path in mail_dir.glob("*.eml"):
        if needle in path.read_text(errors="replace"):
            return path
    return None


async def _wait_for_mail(mail_dir: Path, needle: str) -> Path:
    async with asyncio.timeout(10):
        while (path := _find_mail(mail_dir, needle)) is None:
            await asyncio.sleep(0.05)
    return path


async def test_sent_email_lands_in_mail_dir(smtp: SmtpService, unique: str) -> None:
    message = EmailMessage()
    message["From"] = "loyalty@localhost"
    message["To"] = f"{unique}@example.test"
    message["Subject"] = f"Welcome to Gold {unique}"
    message.set_content("You reached Gold.")

    await aiosmtplib.send(message, hostname="127.0.0.1", port=smtp.port, timeout=10)

    path = await _wait_for_mail(smtp.mail_dir, unique)
    received = email.message_from_bytes(path.read_bytes())
    assert received["Subject"] == f"Welcome to Gold {unique}"
    assert received["X-Envelope-To"] == f"{unique}@example.test"
    assert "You reached Gold." in received.get_payload()


def test_start_is_idempotent(smtp: SmtpService) -> None:
    pid = read_pid(smtp.pid_file)
    smtp.start()
    assert pid is not None
    assert read_pid(smtp.pid_file) == pid
    assert smtp.status().healthy
