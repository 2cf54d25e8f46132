"""Sending email through the configured SMTP server (identity's reset links,
referrals' shares): one small function every service uses.

The server comes from settings (``smtp_host``, ``smtp_port``, ``smtp_sender``).
smtplib is green under eventlet's monkey-patching, so a send does not block the
service's other workers.

Example::

    >>> send("parent@example.org", "Tutoring at Bright Futures",
    ...      "Hours: Mon-Fri 4-6 pm", html="<p>Hours: Mon-Fri 4-6 pm</p>")
    '<172...@weintervene.local>'       # the Message-ID
"""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from prometheus_client import Counter

from weintervene.config import settings
from weintervene.errors import Unavailable, remote

EMAILS_SENT = Counter("weintervene_emails_sent_total", "Emails handed to the SMTP server", ["outcome"])

SMTP_TIMEOUT_SECONDS = 15


@remote
class MailUnavailable(Unavailable):
    """The message was not accepted now; trying again later may succeed."""

    code = "mail_unavailable"


@remote
class MailRefused(MailUnavailable):
    """The server refused the recipient or the message for good (a 5xx reply): do not retry."""

    code = "mail_refused"


def build_message(to: str, subject: str, text: str, html: str | None = None,
                  headers: dict | None = None) -> EmailMessage:
    """The message as it will be sent (plain text, with an HTML alternative if given)."""
    message = EmailMessage()
    message["From"] = settings().smtp_sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="weintervene.local")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def send(to: str, subject: str, text: str, html: str | None = None, headers: dict | None = None) -> str:
    """Send one email; returns its Message-ID.

    Raises MailRefused when the server refused the recipient or the message with
    a permanent (5xx) reply, MailUnavailable for anything a retry may cure.
    """
    cfg = settings()
    message = build_message(to, subject, text, html, headers)
    try:
        with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            smtp.send_message(message)
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


def _text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
