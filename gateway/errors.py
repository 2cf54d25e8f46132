"""The one table that maps errors (local or remote) to HTTP status codes.

Services raise the errors of ``weintervene.errors`` or their own subclasses;
importing each service's ``exceptions`` module here registers those subclasses
so they arrive as instances and find their row below.

Example::

    >>> error_response(NotFound("No such student.", code="student_not_found"))
    (404, {"error": {"code": "student_not_found", "message": "No such student."}})
"""
from __future__ import annotations

import logging

import eventlet
from marshmallow import ValidationError
from nameko.exceptions import RemoteError, ReplyQueueExpiredWithPendingReplies, RpcTimeout, UnknownService

import services.analytics.exceptions  # noqa: F401  (registers remote errors)
import services.directory.exceptions  # noqa: F401
import services.identity.exceptions  # noqa: F401
import services.referrals.exceptions  # noqa: F401
import services.retention.exceptions  # noqa: F401
from weintervene.errors import (
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, RateLimited,
    Unauthorized, Unavailable, Unprocessable, WeInterveneError,
)

log = logging.getLogger(__name__)

# Most specific first: the first matching row wins.
STATUS_BY_ERROR: list[tuple[type[BaseException], int, str]] = [
    (BadRequest, 400, "bad_request"),
    (ValidationError, 400, "invalid_input"),
    (Unauthorized, 401, "unauthorized"),
    (Forbidden, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (PayloadTooLarge, 413, "payload_too_large"),
    (Unprocessable, 422, "unprocessable"),
    (RateLimited, 429, "rate_limited"),
    (Unavailable, 503, "unavailable"),
    (UnknownService, 503, "service_unavailable"),
    # The broker restarted while the call waited: its reply is lost (weintervene.rpc).
    (ReplyQueueExpiredWithPendingReplies, 503, "service_unavailable"),
    (RpcTimeout, 504, "service_timeout"),
    (eventlet.Timeout, 504, "service_timeout"),
]


def error_response(exc: BaseException) -> tuple[int, dict]:
    """(status, JSON body) for ``exc``; unknown errors are 500 without details."""
    for error_type, status, default_code in STATUS_BY_ERROR:
        if isinstance(exc, error_type):
            if isinstance(exc, WeInterveneError):
                return status, {"error": exc.to_dict()}
            if isinstance(exc, ValidationError):
                return status, {"error": {"code": default_code, "message": "Invalid input.", "details": exc.messages}}
            if status >= 500:
                return status, {"error": {"code": default_code, "message": "A service did not answer. Try again shortly."}}
            return status, {"error": {"code": default_code, "message": str(exc)}}
    if isinstance(exc, RemoteError):
        log.error("unmapped remote error %s: %s", exc.exc_type, exc.value)
    else:
        log.exception("unexpected error", exc_info=exc)
    return 500, {"error": {"code": "internal_error", "message": "Something went wrong on our side; it has been logged."}}
