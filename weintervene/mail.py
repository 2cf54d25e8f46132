"""Sending email through the configured SMTP server (identity's reset links,
referrals' shares): one small function every service uses.

The server comes from settings (``smtp_host``, ``smtp_port``, ``smtp_sender``).
smtplib is green under eventlet's monkey-patching, so a send does not block the
service's other workers.

Many messages at once (a delivery chunk) share one connection: pass a
:class:`MailConnection`. Connecting (TCP, greeting, EHLO, QUIT) cost as much as
the message itself, per message.

What a message is, is :func:`build_message` (the email package's classic
``MIMEText`` API: plain text with an HTML alternative, UTF-8 quoted-printable).
What goes on the wire is written by :func:`wire_bytes`: exactly the bytes the
email package's generator writes for that message (a test compares them on
many messages), for about an eighth of the CPU. The generator made a ``Header``
object per header, compiled a regular expression per message to check that the
boundary does not occur in the parts (it cannot: see :func:`_boundary`), and
wrote the body line by line; the header-parsing ``EmailMessage`` API cost ten
times as much again.

Example::

    >>> send("parent@example.org", "Tutoring at Bright Futures",
    ...      "Hours: Mon-Fri 4-6 pm", html="<p>Hours: Mon-Fri 4-6 pm</p>")
    '<172...@weintervene.local>'       # the Message-ID
    >>> with MailConnection() as connection:   # one SMTP session for both
    ...     send("a@example.org", "Hi", "…", connection=connection)
    ...     send("b@example.org", "Hi", "…", connection=connection)
"""
from __future__ import annotations

import functools
import random
import re
import smtplib
import socket
import sys
import time
from email import charset as email_charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import Compat32
from email.utils import make_msgid, parseaddr

from prometheus_client import Counter

from weintervene.config import settings
from weintervene.errors import Unavailable, remote

EMAILS_SENT = Counter("weintervene_emails_sent_total", "Emails handed to the SMTP server", ["outcome"])

SMTP_TIMEOUT_SECONDS = 15


class WirePolicy(Compat32):
    """The classic API's policy (compat32), writing a header that fits on one line and is
    plain printable ASCII as it is: the bytes ``Header.encode`` would give, without making
    a ``Header`` per header (most of a message's serialising time). Anything else (long,
    non-ASCII, with line breaks) goes through compat32's folding as before."""

    def _fold(self, name, value, sanitize):
        if (type(value) is str and len(name) + len(value) + 2 <= self.max_line_length
                and value.isascii() and value.isprintable() and value == value.strip()):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


# With SMTP's line endings: smtplib sends bytes as they are.
WIRE_POLICY = WirePolicy(linesep="\r\n")

# UTF-8 bodies as quoted-printable: plain ASCII stays readable in the raw message.
UTF8_QP = email_charset.Charset("utf-8")
UTF8_QP.header_encoding = email_charset.QP
UTF8_QP.body_encoding = email_charset.QP


@remote
class MailUnavailable(Unavailable):
    """The message was not accepted now; trying again later may succeed."""

    code = "mail_unavailable"


@remote
class MailRefused(MailUnavailable):
    """The server refused the recipient or the message for good (a 5xx reply): do not retry."""

    code = "mail_refused"


def _header(value: str):
    """An ASCII header as is; anything else as RFC 2047 encoded words."""
    return value if value.isascii() else Header(value, "utf-8")


def _boundary() -> str:
    """A multipart boundary the parts cannot contain, so nothing needs to check them.

    Every part is quoted-printable (``UTF8_QP``), where ``=`` only ever starts an escape
    (``=3D``) or ends a line (a soft break): no line of a part can start with ``--==``.
    Same form as the email package's own (``===============<19 digits>==``).
    """
    return "=" * 15 + "%019d" % random.randrange(sys.maxsize) + "=="


def build_message(to: str, subject: str, text: str, html: str | None = None,
                  headers: dict | None = None) -> Message:
    """The message as it will be sent (plain text, with an HTML alternative if given)."""
    body = MIMEText(text, "plain", UTF8_QP)
    if html is None:
        message = body
    else:
        message = MIMEMultipart("alternative", boundary=_boundary())
        message.attach(body)
        message.attach(MIMEText(html, "html", UTF8_QP))
    message["From"] = settings().smtp_sender
    message["To"] = to
    message["Subject"] = _header(subject)
    message["Message-ID"] = make_msgid(domain="weintervene.local")
    for name, value in (headers or {}).items():
        message[name] = _header(value)
    return message


# The headers of a text part, as MIMEText(…, UTF8_QP) has them and the generator writes them.
_PART_HEADERS = {subtype: (f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
                           f"Content-Transfer-Encoding: quoted-printable\r\n") for subtype in ("plain", "html")}
_NEWLINES = re.compile(r"\r\n|\r|\n")  # any line end, written as CRLF (the generator's _write_lines)
# The multipart's Content-Type folds the same way for every boundary (they are all as long and
# have no space, comma or semicolon): folded once, with a stand-in boundary replaced per message.
_STAND_IN = "=" * 15 + "0" * 19 + "=="


@functools.lru_cache(maxsize=1)
def _multipart_header() -> str:
    return WIRE_POLICY.fold("Content-Type", f'multipart/alternative; boundary="{_STAND_IN}"')


def wire_bytes(message_id: str, boundary: str, to: str, subject: str, text: str, html: str | None = None,
               headers: dict | None = None) -> bytes:
    """``build_message(to, subject, text, html, headers).as_bytes(policy=WIRE_POLICY)``, byte for
    byte, had that message got ``message_id`` and ``boundary``: written directly (each part
    quoted-printable with the email package's own encoder, every header folded by WIRE_POLICY).

    Example::

        >>> wire_bytes("<1@weintervene.local>", _boundary(), "a@example.org", "Hi", "Hello", "<p>Hello</p>")
        b'Content-Type: multipart/alternative;\\r\\n boundary="===============…=="\\r\\nMIME-Version: 1.0\\r\\n…'
    """
    fold = WIRE_POLICY.fold
    fields = "".join((fold("From", settings().smtp_sender), fold("To", to), fold("Subject", _header(subject)),
                      fold("Message-ID", message_id),
                      *(fold(name, _header(value)) for name, value in (headers or {}).items())))
    if html is None:
        return f"{_PART_HEADERS['plain']}{fields}\r\n{_quoted_printable(text)}".encode("ascii")
    return (f"{_multipart_header().replace(_STAND_IN, boundary)}MIME-Version: 1.0\r\n{fields}\r\n"
            f"--{boundary}\r\n{_PART_HEADERS['plain']}\r\n{_quoted_printable(text)}\r\n"
            f"--{boundary}\r\n{_PART_HEADERS['html']}\r\n{_quoted_printable(html)}\r\n"
            f"--{boundary}--\r\n").encode("ascii")


def _quoted_printable(body: str) -> str:
    """A part's body as MIMEText stores it (UTF-8, quoted-printable), in CRLF lines."""
    return _NEWLINES.sub("\r\n", UTF8_QP.body_encode(body))


@functools.lru_cache(maxsize=1)
def _local_hostname() -> str:
    """What EHLO says: smtplib looks it up (socket.getfqdn) on every connection otherwise."""
    return socket.getfqdn()


# SMTP sessions a MailConnection(keep_open=True) leaves open for the next one: opening one
# costs a TCP handshake, the greeting, EHLO and at the end QUIT (four round trips and
# ~0.17 ms of CPU), as much as sending a message on it. At most IDLE_SESSIONS are kept,
# each for IDLE_SECONDS (servers drop idle sessions after minutes; RFC 5321 asks for at
# least five); one idle longer than CHECK_AFTER_SECONDS is checked with NOOP before use.
IDLE_SESSIONS = 8
IDLE_SECONDS = 30.0
CHECK_AFTER_SECONDS = 1.0
_idle: list[tuple[float, tuple[str, int], smtplib.SMTP]] = []  # (idle since, server, session), newest last


def _take_idle(server: tuple[str, int]) -> smtplib.SMTP | None:
    """A kept session to ``server`` that still answers, or None."""
    now = time.monotonic()
    while _idle:
        since, where, smtp = _idle.pop()
        if where != server or now - since > IDLE_SECONDS:
            smtp.close()
            continue
        if now - since > CHECK_AFTER_SECONDS:
            try:
                if smtp.noop()[0] != 250:
                    raise smtplib.SMTPException("NOOP refused")
            except (OSError, smtplib.SMTPException):
                smtp.close()
                continue
        return smtp
    return None


def _keep(server: tuple[str, int], smtp: smtplib.SMTP) -> bool:
    """Keep ``smtp`` for the next MailConnection(keep_open=True); False when enough are kept."""
    now = time.monotonic()
    while _idle and now - _idle[0][0] > IDLE_SECONDS:
        _idle.pop(0)[2].close()
    if len(_idle) >= IDLE_SESSIONS:
        return False
    _idle.append((now, server, smtp))
    return True


class MailConnection:
    """One SMTP session for several messages; opened at the first send, QUIT at the end.

    After a refused recipient smtplib resets the session (RSET) and the next
    message goes on the same connection; after any other failure the connection
    is dropped and the next message opens a new one, so one bad moment costs
    that message only (it is retried later like any temporary failure).

    ``keep_open=True``: a healthy session is left open at the end for the next
    such MailConnection, which takes it instead of opening one (see ``_idle``).

    Example::

        with MailConnection() as connection:
            for to in addresses:
                send(to, subject, text, html, connection=connection)
    """

    def __init__(self, keep_open: bool = False):
        self.smtp: smtplib.SMTP | None = None
        self.connections_opened = 0
        self.keep_open = keep_open
        self.server: tuple[str, int] | None = None

    def __enter__(self) -> "MailConnection":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def sendmail(self, sender: str, to: str, data: bytes) -> None:
        if self.smtp is None:
            cfg = settings()
            self.server = (cfg.smtp_host, cfg.smtp_port)
            self.smtp = _take_idle(self.server) if self.keep_open else None
            if self.smtp is None:
                self.smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, local_hostname=_local_hostname(),
                                         timeout=SMTP_TIMEOUT_SECONDS)
                self.connections_opened += 1
        try:
            self.smtp.sendmail(sender, [to], data)
        except smtplib.SMTPRecipientsRefused:
            raise  # smtplib sent RSET: the session goes on
        except BaseException:
            self._drop()
            raise

    def close(self) -> None:
        if self.smtp is None:
            return
        if self.keep_open and _keep(self.server, self.smtp):
            self.smtp = None
            return
        try:
            self.smtp.quit()
        except (OSError, smtplib.SMTPException):
            self._drop()
        self.smtp = None

    def _drop(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            smtp.close()


def send(to: str, subject: str, text: str, html: str | None = None, headers: dict | None = None,
         connection: MailConnection | None = None) -> str:
    """Send one email; returns its Message-ID.

    On ``connection`` when given (several messages, one SMTP session), else on a
    connection of its own. Raises MailRefused when the server refused the
    recipient or the message with a permanent (5xx) reply, MailUnavailable for
    anything a retry may cure.
    """
    message_id = make_msgid(domain="weintervene.local")
    data = wire_bytes(message_id, _boundary(), to, subject, text, html, headers)
    sender = _envelope_sender(settings().smtp_sender)
    try:
        if connection is not None:
            connection.sendmail(sender, to, data)
        else:
            with MailConnection() as own:
                own.sendmail(sender, to, data)
    except smtplib.SMTPRecipientsRefused as exc:
        EMAILS_SENT.labels("failed").inc()
        code, reply = next(iter(exc.recipients.values()))
        error = MailRefused if code >= 500 else MailUnavailable
        raise error(f"The mail server refused the recipient: {code} {_text(reply)}") from None
    except smtplib.SMTPResponseException as exc:
        EMAILS_SENT.labels("failed").inc()
        error = MailRefused if exc.smtp_code >= 500 else MailUnavailable
        raise error(f"The mail server answered {exc.smtp_code} {_text(exc.smtp_error)}") from None
    except (OSError, smtplib.SMTPException) as exc:
        EMAILS_SENT.labels("failed").inc()
        raise MailUnavailable(f"The mail server did not accept the message: {type(exc).__name__}") from None
    EMAILS_SENT.labels("sent").inc()
    return message_id


@functools.lru_cache(maxsize=8)
def _envelope_sender(sender: str) -> str:
    """The bare address of the configured sender ("WeIntervene <no-reply@…>" -> "no-reply@…")."""
    return parseaddr(sender)[1]


def _text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
