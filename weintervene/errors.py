"""Errors that cross service boundaries.

A service raises one of these (or a subclass from its own ``exceptions.py``);
nameko carries it over RPC and, because each class is registered with
``deserialize_to_instance``, the gateway receives an instance again and maps it
to an HTTP status in its one table (``gateway/errors.py``).

Every error has a machine ``code`` and a human ``message``; ``details`` holds
field-level reasons (for example marshmallow's messages).

Example::

    >>> raise NotFound("No such student.", code="student_not_found")
    # at the gateway: 404 {"error": {"code": "student_not_found", "message": "No such student."}}
"""
from __future__ import annotations

from nameko.exceptions import deserialize_to_instance


class WeInterveneError(Exception):
    code = "error"

    def __init__(self, message: str = "", code: str | None = None, details=None):
        super().__init__(message, code or self.code, details or {})
        self.message = message
        self.code = code or self.code
        self.details = details or {}

    def __str__(self):
        return self.message

    def to_dict(self) -> dict:
        body = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


def remote(cls):
    """Register an error class so it arrives at the caller as itself."""
    return deserialize_to_instance(cls)


@remote
class BadRequest(WeInterveneError):
    code = "bad_request"


@remote
class Unauthorized(WeInterveneError):
    code = "unauthorized"


@remote
class Forbidden(WeInterveneError):
    code = "forbidden"


@remote
class NotFound(WeInterveneError):
    code = "not_found"


@remote
class Conflict(WeInterveneError):
    code = "conflict"


@remote
class Unprocessable(WeInterveneError):
    """Well-formed, but it cannot be done as asked (an idempotency key sent again with
    another request)."""

    code = "unprocessable"


@remote
class PayloadTooLarge(WeInterveneError):
    code = "payload_too_large"


@remote
class RateLimited(WeInterveneError):
    code = "rate_limited"


@remote
class Unavailable(WeInterveneError):
    code = "unavailable"


# The caller's mistakes (a 4xx at the gateway); Unavailable is ours (503).
CLIENT_ERRORS = (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Unprocessable, PayloadTooLarge, RateLimited)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``Type code: message`` of an error on one line, for logs.

    Example: one_line(NotFound("No such student.", code="student_not_found"))
    -> "NotFound student_not_found: No such student."
    """
    code = getattr(exc, "code", None)
    text = " ".join(str(exc).split())[:limit]
    return f"{type(exc).__name__} {code}: {text}" if code else f"{type(exc).__name__}: {text}"
