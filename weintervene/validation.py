"""Load untrusted input with a marshmallow schema, or raise a 400 with reasons.

Example::

    >>> load(StudentSchema(), {"name": "Diego", "grade": "x"})
    BadRequest: Invalid input. details={"grade": ["Not a valid integer."]}
"""
from __future__ import annotations

from marshmallow import Schema, ValidationError

from weintervene.errors import BadRequest


def load(schema: Schema, data, **kwargs):
    if data is None:
        data = {}
    try:
        return schema.load(data, **kwargs)
    except ValidationError as exc:
        raise BadRequest("Invalid input.", code="invalid_input", details=exc.messages) from None
