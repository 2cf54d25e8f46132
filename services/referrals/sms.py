"""Send an SMS through a Twilio-style HTTP API (``settings().sms_*``).

``POST {sms_base_url}/2010-04-01/Accounts/{sms_account}/Messages.json`` with
form fields To/From/Body, HTTP basic auth ``account:token``, and an
``Idempotency-Key`` header: the key is the delivery's id, so a retry after a
lost response can never make the provider send the message twice.

Example::

    >>> send_sms("+15551234567", "Tutoría Casa Azul, 12 Main St", idempotency_key="d-1")
    'SM9f2c…'
"""
from __future__ import annotations

import base64
import hashlib
import hmac

import requests

from weintervene.config import DEFAULT_SMS_TOKEN, settings


class SmsError(Exception):
    def __init__(self, reason: str, permanent: bool):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def send_sms(to: str, body: str, idempotency_key: str) -> str:
    """Send ``body`` to ``to``; returns the provider's message id, or raises SmsError."""
    cfg = settings()
    url = f"{cfg.sms_base_url.rstrip('/')}/2010-04-01/Accounts/{cfg.sms_account}/Messages.json"
    try:
        response = requests.post(
            url,
            data={"To": to, "From": cfg.sms_sender, "Body": body, "StatusCallback": status_callback_url()},
            auth=(cfg.sms_account, cfg.sms_token),
            headers={"Idempotency-Key": idempotency_key},
            timeout=cfg.sms_timeout_seconds,
        )
    except requests.RequestException as exc:
        raise SmsError(f"SMS provider unreachable: {type(exc).__name__}", permanent=False) from None
    if response.status_code in (200, 201):
        try:
            return str(response.json().get("sid") or "")
        except ValueError:
            return ""
    reason = f"SMS provider answered {response.status_code}: {response.text[:200]}"
    # 429 and 5xx are the provider's trouble; other 4xx (bad number, auth) will not heal.
    permanent = 400 <= response.status_code < 500 and response.status_code != 429
    raise SmsError(reason, permanent=permanent)


STATUS_CALLBACK_PATH = "/api/v1/deliveries/sms-status"


def status_callback_url() -> str:
    """Where the provider reports what became of a message (delivered, undelivered…)."""
    return settings().public_base_url.rstrip("/") + STATUS_CALLBACK_PATH


def signature(url: str, params: dict) -> str:
    """The provider's request signature (Twilio's scheme): base64 HMAC-SHA1, keyed with
    the account token, of the callback URL followed by every form field, sorted by name,
    as name+value."""
    payload = url + "".join(name + str(params[name]) for name in sorted(params))
    digest = hmac.new(settings().sms_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def valid_signature(params: dict, sent: str | None) -> bool:
    """The callback is signed with our account token. Never true under the published
    default token (development mode runs with it): anyone can sign with that one."""
    token = settings().sms_token
    if not sent or not token or token == DEFAULT_SMS_TOKEN:
        return False
    return hmac.compare_digest(signature(status_callback_url(), params), sent)
