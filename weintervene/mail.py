"""Send one email through the configured SMTP server (``settings().smtp_*``).

Shared by every service that writes to people (referrals' shares and reminders,
identity's password resets). Errors are sorted into permanent (the server
refused the recipient or the message: retrying cannot help) and temporary
(connection refused, timeouts, 4xx replies: try again later), so callers can
retry with backoff without ever retrying a message the server already refused.

Example::

    >>> send_email("ana@example.org", "Tutoring at Casa Azul",
    ...            "Plain text body", "<p>HTML body</p>")
    '<172.1.abc@weintervene.local>'
"""
from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from weintervene.config import settings


class MailError(Exception):
    """Sending failed; ``permanent`` says whether a retry could succeed."""

    def __init__(self, reason: str, permanent: bool):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def build_message(to: str, subject: str, text: str, html: str | None = None,
                  headers: dict | None = None) -> EmailMessage:
    cfg = settings()
    message = EmailMessage()
    message["From"] = cfg.smtp_sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="weintervene.local")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def send_email(to: str, subject: str, text: str, html: str | None = None,
               headers: dict | None = None) -> str:
    """Send a plain-text (and optionally HTML) email; returns its Message-ID.

    Raises :class:`MailError` with ``permanent=True`` when the server refused
    the recipient or the message (5xx), ``permanent=False`` otherwise.
    """
    cfg = settings()
    message = build_message(to, subject, text, html, headers)
    try:
        with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.smtp_timeout_seconds) as smtp:
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        raise MailError(f"recipient refused: {code} {_text(reply)}", permanent=code >= 500) from None
    except smtplib.SMTPResponseException as exc:
        raise MailError(f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}", permanent=exc.smtp_code >= 500) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"SMTP unavailable: {type(exc).__name__}: {exc}", permanent=False) from None
    return message["Message-ID"]


def _text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
