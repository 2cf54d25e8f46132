"""Sending email through the configured SMTP server (identity's reset links,
referrals' shares): one small function every service uses.

The server comes from settings (``smtp_host``, ``smtp_port``, ``smtp_sender``).
smtplib is green under eventlet's monkey-patching, so a send does not block the
service's other workers.

Many messages at once (a delivery chunk) share one connection: pass a
:class:`MailConnection`. Connecting (TCP, greeting, EHLO, QUIT) cost as much as
the message itself, per message.

Messages are built with the email package's classic ``MIMEText`` API: the
header-parsing ``EmailMessage`` API cost ten times as much per message (its
header registry parses every address on set and on flatten), a tenth of
referrals' CPU per share in the benchmark. Two more savings, same bytes on the
wire: short ASCII headers are written as they are instead of through a
``Header`` object each (:class:`WirePolicy`), and the multipart boundary is set
up front, so the generator does not compile a regular expression per message to
check that it does not occur in the parts (it cannot: see :func:`_boundary`).

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
import smtplib
import sys
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
    """A multipart boundary the parts cannot contain, so the generator need not check them.

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


class MailConnection:
    """One SMTP session for several messages; opened at the first send, QUIT at the end.

    After a refused recipient smtplib resets the session (RSET) and the next
    message goes on the same connection; after any other failure the connection
    is dropped and the next message opens a new one, so one bad moment costs
    that message only (it is retried later like any temporary failure).

    Example::

        with MailConnection() as connection:
            for to in addresses:
                send(to, subject, text, html, connection=connection)
    """

    def __init__(self):
        self.smtp: smtplib.SMTP | None = None
        self.connections_opened = 0

    def __enter__(self) -> "MailConnection":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def sendmail(self, sender: str, to: str, data: bytes) -> None:
        if self.smtp is None:
            cfg = settings()
            self.smtp = smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
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
    message = build_message(to, subject, text, html, headers)
    sender = _envelope_sender(settings().smtp_sender)
    data = message.as_bytes(policy=WIRE_POLICY)
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
    return message["Message-ID"]


@functools.lru_cache(maxsize=8)
def _envelope_sender(sender: str) -> str:
    """The bare address of the configured sender ("WeIntervene <no-reply@…>" -> "no-reply@…")."""
    return parseaddr(sender)[1]


def _text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
