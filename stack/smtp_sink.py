"""A real SMTP server on loopback that writes every message it receives to a folder.

Run as ``python -m stack.smtp_sink --port 2525 --mail-dir .stack/mail``. Each message becomes one
``.eml`` file (the raw RFC 5322 message plus ``X-Envelope-*`` headers), written to a temporary
name and renamed, so a reader never sees half a message.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class MailDirHandler:
    """aiosmtpd handler: store each accepted message as a file under mail_dir."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir
        mail_dir.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Write the message and accept it."""
        content = envelope.original_content or b""
        headers = (
            f"X-Envelope-From: {envelope.mail_from}\r\n"
            f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.mail_dir / f".{name}.tmp"
        tmp.write_bytes(headers + content)
        tmp.rename(self.mail_dir / name)
        return "250 Message accepted for delivery"


async def serve(host: str, port: int, mail_dir: Path) -> None:
    """Serve until SIGTERM or SIGINT."""
    controller = Controller(MailDirHandler(mail_dir), hostname=host, port=port)
    controller.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        controller.stop()


def main() -> None:
    """Parse arguments and run the sink."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mail-dir", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.mail_dir))


if __name__ == "__main__":
    main()
