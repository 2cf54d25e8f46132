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
    code = "mail_unavailable"


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
    """Send one email; returns its Message-ID, or raises MailUnavailable."""
    cfg = settings()
    message = build_message(to, subject, text, html, headers)
    try:
        with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        EMAILS_SENT.labels("failed").inc()
        raise MailUnavailable(f"The mail server did not accept the message: {type(exc).__name__}") from None
    EMAILS_SENT.labels("sent").inc()
    return message["Message-ID"]
