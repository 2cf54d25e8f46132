"""Refusals are logged on one line; tracebacks are for our own faults (5xx) only.

nameko logs every error a worker raises. Those in the entrypoint's
``expected_exceptions`` (ours: :class:`weintervene.errors.WeInterveneError`, see
:func:`weintervene.entrypoints.rpc`) as a warning, but still with the whole traceback:
a teacher opening a student they do not serve filled the log with twenty lines from
identity's access check. :class:`RefusalsOnOneLine`, a standard ``logging.Filter`` on
nameko's container logger, turns a caller's mistake (a 4xx at the gateway:
:data:`weintervene.errors.CLIENT_ERRORS`) into one line naming the worker, the error's
type, code and message; anything else (``Unavailable``, an unexpected error) keeps its
traceback.

Example of the line::

    WARNING nameko.containers: (expected) error handling worker <WorkerContext [identity.get_student] at 0x7f…>:
    StudentNotFound student_not_found: No such student.
"""
from __future__ import annotations

import logging

from weintervene.errors import CLIENT_ERRORS, one_line

NAMEKO_CONTAINER_LOGGER = "nameko.containers"


class RefusalsOnOneLine(logging.Filter):
    """Drops the traceback of a record whose error is the caller's (a 4xx); keeps the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, CLIENT_ERRORS):
            worker = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = "(expected) error handling worker %s: %s", (worker, one_line(exc))
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def install() -> None:
    """Put the filter on nameko's container logger, once (importing a service does it)."""
    logger = logging.getLogger(NAMEKO_CONTAINER_LOGGER)
    if not any(isinstance(f, RefusalsOnOneLine) for f in logger.filters):
        logger.addFilter(RefusalsOnOneLine())
