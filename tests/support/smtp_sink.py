"""A real SMTP server for tests: stores every message it accepts as a .eml file.

Run as a subprocess (``python -m tests.support.smtp_sink --port 2525 --out DIR``)
so asyncio never meets eventlet's monkey-patching in the test process.

Each stored message starts with two headers of the sink's own: ``X-Envelope-To``
(the envelope recipients) and ``X-Sink-Connection`` (an id of the SMTP connection
that carried it, so a test can see which messages shared one). A recipient whose
address starts with ``refused-`` is refused with a permanent 550.
"""
from __future__ import annotations

import argparse
import os
import time
import uuid
from pathlib import Path


class SaveToFolder:
    def __init__(self, out: Path):
        self.out = out

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused-"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = f"{time.time():.6f}-{uuid.uuid4().hex}.eml"
        if not getattr(session, "sink_connection", None):
            session.sink_connection = uuid.uuid4().hex[:12]  # one session per connection
        header = ("X-Envelope-To: " + ", ".join(envelope.rcpt_tos) + "\r\n"
                  + "X-Sink-Connection: " + session.sink_connection + "\r\n")
        tmp = self.out / (name + ".tmp")
        tmp.write_bytes(header.encode() + envelope.original_content)
        os.replace(tmp, self.out / name)  # atomic: readers never see half a message
        return "250 Message accepted for delivery"


def main() -> None:
    from aiosmtpd.controller import Controller

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    controller = Controller(SaveToFolder(args.out), hostname="127.0.0.1", port=args.port)
    controller.start()
    (args.out / "READY").write_text("ok")
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
