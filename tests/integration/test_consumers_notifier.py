"""The email notifier against the real stack: Kafka in, the local SMTP sink out."""

from __future__ import annotations

from pathlib import Path

from consumers.app import serving
from settings import Settings
from stack.smtp import SmtpService
from tests.integration.consumers_support import isolated, mails_to, notification, publish
from tests.integration.waiting import eventually
from topics import names


async def test_tier_upgrade_sends_one_escaped_email(
    stack: Settings, smtp: SmtpService, unique: str, tmp_path: Path
) -> None:
    settings = isolated(stack, unique, tmp_path)
    address = f"up-{unique}@example.test"
    message = notification(
        f"c-{unique}",
        email_address=address,
        first_name="<script>alert(1)</script>",
        template_data={
            "from_tier": "Silver",
            "to_tier": "Gold",
            "direction": "up",
            "benefits": ["Free shipping"],
            "rewards": [
                {"reward_id": "welcome-gold", "reward_name": "10 EUR off", "code": "GOLDCODE42"}
            ],
        },
    )
    async with serving(settings, ["notifier"], web=False):
        await publish(settings, names.NOTIFICATIONS, [message, message])

        async def arrived() -> bool:
            return len(mails_to(smtp.mail_dir, address)) >= 1

        await eventually(arrived, within=30, what="the upgrade email")
    [mail] = mails_to(smtp.mail_dir, address)
    assert "Gold" in mail["Subject"]
    assert mail["To"] == address
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "Gold" in text and "GOLDCODE42" in text
    assert "GOLDCODE42" in html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
