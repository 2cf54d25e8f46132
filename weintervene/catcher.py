"""The demo's message catcher: a local SMTP server and SMS provider endpoint that keep
what the services send, so a new user sees on the "Messages sent" page what families got.

``weintervene run --demo`` (``make run``) starts it, in development mode only, in a process
of its own (``python -m weintervene.catcher``: plain threads, no eventlet), on loopback, and
only for what the settings point at loopback: ``smtp_host``:``smtp_port`` (default
127.0.0.1:1025) and ``sms_base_url`` (default http://127.0.0.1:1026). A real mail server or
SMS provider in the settings is left alone and nothing is caught for it.

What it catches goes to ``<data_dir>/messages-caught.jsonl``, one JSON object a line, the
newest :data:`KEEP` only; the file is emptied each time the catcher starts (a restart
forgets what the last run caught). The gateway reads it (``GET /api/v1/dev/messages``).

The SMTP side is a minimal RFC 5321 receiver (HELO/EHLO, MAIL, RCPT, DATA with
dot-unstuffing, RSET, NOOP, QUIT) on :mod:`socketserver`: aiosmtpd is asyncio, which
does not mix with eventlet's patching, and smtplib only ever speaks these commands.
The SMS side answers ``POST /2010-04-01/Accounts/<account>/Messages.json`` as
:mod:`services.referrals.sms` sends it (form fields To, From, Body; 201 with a sid).

Example::

    $ python -m weintervene.catcher --data-dir data --smtp 127.0.0.1:1025 --sms 127.0.0.1:1026
    >>> caught_messages(Path("data"))[0]["channel"]
    'sms'
"""
from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

CAUGHT_FILE = "messages-caught.jsonl"
KEEP = 500
"""Messages kept: the file is cut back to the newest this many."""
MAX_MESSAGE_BYTES = 2 * 1024 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_SMS_PATH = re.compile(r"^/2010-04-01/Accounts/[^/]+/Messages\.json$")


class CaughtMessages:
    """The kept messages: appended one line each, cut back to the newest KEEP, thread-safe."""

    def __init__(self, data_dir: Path):
        self.path = Path(data_dir) / CAUGHT_FILE
        self.lock = threading.Lock()
        self.count = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")  # a restart forgets the last run's messages

    def add(self, record: dict) -> None:
        record = {"id": uuid.uuid4().hex, "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  **record}
        with self.lock:
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")
            self.count += 1
            if self.count > KEEP * 2:  # cut back now and then, not on every message
                lines = self.path.read_text(encoding="utf-8").splitlines()[-KEEP:]
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
                os.replace(tmp, self.path)
                self.count = len(lines)


def caught_messages(data_dir: Path, limit: int = KEEP) -> list[dict] | None:
    """The caught messages, newest first; None when no catcher ran with this data directory.

    Example: caught_messages(Path("data")) -> [{"channel": "email", "to": "…", "subject": "…", …}]
    """
    path = Path(data_dir) / CAUGHT_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    messages = []
    for line in reversed(lines[-limit:]):
        try:
            messages.append(json.loads(line))
        except ValueError:
            continue  # a line being written
    return messages


def email_record(envelope_to: list[str], data: bytes) -> dict:
    """What the page shows of one email: to, subject, language, its text and HTML parts."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    return {
        "channel": "email",
        "to": ", ".join(envelope_to),
        "subject": str(message.get("Subject", "")),
        "language": str(message.get("Content-Language", "")) or None,
        # As the reader sees it: the wire's CRLF line ends as plain newlines.
        "text": _lines(text_part.get_content()) if text_part is not None else "",
        "html": _lines(html_part.get_content()) if html_part is not None else None,
    }


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n")


class SmtpHandler(socketserver.StreamRequestHandler):
    """One SMTP session: the commands smtplib sends, each answered as RFC 5321 says."""

    timeout = 60

    def reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode("ascii"))
        self.wfile.flush()

    def read_line(self) -> bytes | None:
        line = self.rfile.readline(MAX_MESSAGE_BYTES)
        return line if line else None

    def handle(self) -> None:
        self.reply("220 weintervene-catcher ESMTP (development only)")
        sender, recipients = None, []
        while True:
            raw = self.read_line()
            if raw is None:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.wfile.write(b"250-weintervene-catcher\r\n250-8BITMIME\r\n")
                self.reply(f"250 SIZE {MAX_MESSAGE_BYTES}")
            elif verb == "HELO":
                self.reply("250 weintervene-catcher")
            elif verb == "MAIL" and arg.upper().startswith("FROM:"):
                sender, recipients = _address(arg[5:]), []
                self.reply("250 OK")
            elif verb == "RCPT" and arg.upper().startswith("TO:"):
                if sender is None:
                    self.reply("503 5.5.1 MAIL first")
                else:
                    recipients.append(_address(arg[3:]))
                    self.reply("250 OK")
            elif verb == "DATA":
                if not recipients:
                    self.reply("503 5.5.1 RCPT first")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = self.read_data()
                if data is None:
                    return
                try:
                    self.server.caught.add(email_record(recipients, data))
                except Exception as exc:  # noqa: BLE001 - a message we cannot read is refused, the session goes on
                    self.reply(f"554 5.6.0 Unreadable message: {type(exc).__name__}")
                else:
                    self.reply("250 OK: caught")
                sender, recipients = None, []
            elif verb == "RSET":
                sender, recipients = None, []
                self.reply("250 OK")
            elif verb == "NOOP":
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 5.5.2 Command not implemented")

    def read_data(self) -> bytes | None:
        """The message up to the lone dot, dot-unstuffed (RFC 5321 4.5.2)."""
        lines, size = [], 0
        while True:
            raw = self.read_line()
            if raw is None:
                return None
            if raw in (b".\r\n", b".\n"):
                return b"".join(lines)
            if raw.startswith(b".."):
                raw = raw[1:]
            size += len(raw)
            if size <= MAX_MESSAGE_BYTES:
                lines.append(raw)


def _address(value: str) -> str:
    """``<a@b.org> SIZE=123`` -> ``a@b.org``."""
    value = value.strip()
    if value.startswith("<"):
        return value[1:value.find(">")] if ">" in value else value[1:]
    return value.split(" ")[0]


class SmtpCatcher(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, caught: CaughtMessages):
        self.caught = caught
        super().__init__(address, SmtpHandler)


def sms_handler(caught: CaughtMessages):
    class SmsHandler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            if not _SMS_PATH.match(urlsplit(self.path).path):
                self.answer(404, {"message": "The catcher answers only the Messages API"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_MESSAGE_BYTES:
                self.answer(413, {"message": "Too large"})
                return
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
            if not form.get("To") or not form.get("Body"):
                self.answer(400, {"message": "To and Body are required"})
                return
            sid = "SM" + uuid.uuid4().hex
            # The Messages API carries no language: the page shows the text as it was sent.
            caught.add({"channel": "sms", "to": form["To"], "subject": None, "language": None,
                        "text": form["Body"], "html": None, "sid": sid})
            self.answer(201, {"sid": sid, "status": "queued"})

    return SmsHandler


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def catcher_addresses(settings) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
    """(SMTP address, SMS address) the catcher should listen on: those of the settings that
    point at loopback; None for one that points elsewhere (a real server: nothing to catch).

    Example: catcher_addresses(Settings()) -> (("127.0.0.1", 1025), ("127.0.0.1", 1026))
    """
    smtp = (settings.smtp_host, settings.smtp_port) if settings.smtp_host in LOOPBACK else None
    url = urlsplit(settings.sms_base_url)
    sms = (url.hostname, url.port or 80) if url.scheme == "http" and url.hostname in LOOPBACK else None
    return smtp, sms


def start_catcher(settings) -> subprocess.Popen | None:
    """Start the catcher in a process of its own for a development-mode demo; None (nothing
    started) outside development mode or when neither setting points at loopback.

    The caller stops it (``terminate``) when it stops.
    """
    if not settings.dev_mode:
        return None
    smtp, sms = catcher_addresses(settings)
    if smtp is None and sms is None:
        return None
    command = [sys.executable, "-m", "weintervene.catcher", "--data-dir", str(settings.data_dir)]
    if smtp:
        command += ["--smtp", f"{smtp[0]}:{smtp[1]}"]
    if sms:
        command += ["--sms", f"{sms[0]}:{sms[1]}"]
    child = subprocess.Popen(command)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and child.poll() is None:
        if _listening(smtp) and _listening(sms):
            return child
        time.sleep(0.1)
    if child.poll() is not None:
        raise SystemExit(f"the message catcher did not start (is something else on {smtp} or {sms}?)")
    return child


def _listening(address) -> bool:
    if address is None:
        return True
    try:
        with socket.create_connection(address, timeout=0.5):
            return True
    except OSError:
        return False


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Catch the demo's email and SMS (development only)")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--smtp", help="host:port for the SMTP catcher (loopback)")
    parser.add_argument("--sms", help="host:port for the SMS catcher (loopback)")
    args = parser.parse_args(argv)
    caught = CaughtMessages(args.data_dir)
    servers = []
    for value, make in ((args.smtp, lambda a: SmtpCatcher(a, caught)),
                        (args.sms, lambda a: ThreadingHTTPServer(a, sms_handler(caught)))):
        if not value:
            continue
        address = _host_port(value)
        if address[0] not in LOOPBACK:
            parser.error(f"the catcher listens on loopback only, not {address[0]}")
        servers.append(make(address))
    if not servers:
        parser.error("nothing to catch: give --smtp and/or --sms")
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    listening = [f"{name} {value}" for name, value in (("SMTP", args.smtp), ("SMS", args.sms)) if value]
    print(f"message catcher: {', '.join(listening)} -> {caught.path}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
