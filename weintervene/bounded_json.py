"""JSON from outside, parsed with limits: a hostile body is refused with a reason, never a 500.

``json.loads`` as it comes lets through what later fails deep inside a service, or
fails itself with errors nobody maps to a 4xx:

- nesting a few thousand levels deep: ``RecursionError`` (a 500), and under that, a
  structure no schema expects; refused past ``max_depth`` levels;
- a number of 100,000 digits: ``ValueError`` from Python's 4,300-digit limit on
  ``int`` (a 500), and any integer past 64 bits fits no column; refused;
- ``1e999`` (infinity), ``NaN``, ``Infinity``: not JSON (RFC 8259) and not storable;
  refused;
- a key twice in one object: parsers disagree on which wins (a proxy or a log may
  read the first, Python keeps the last); refused rather than guessed;
- a lone surrogate (``"\\ud800"``): a string that cannot be written as UTF-8 (the
  database driver fails on it); refused.

Example::

    >>> loads_bounded('{"a": [1, 2]}')
    {'a': [1, 2]}
    >>> loads_bounded('{"a": 1, "a": 2}')
    Traceback (most recent call last):
    JsonRefused: The key "a" appears twice in one object.
"""
from __future__ import annotations

import json
import math
import re

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
# Longest number literal accepted: a float's repr needs ~24 characters; an int64 20.
MAX_NUMBER_CHARS = 64
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonRefused(ValueError):
    """Well-formed or not, JSON we will not take; ``str()`` says why, for the caller."""


def _parse_int(literal: str) -> int:
    # Called with the literal before Python converts it: 100,000 digits never reach int().
    if len(literal.lstrip("-")) > 19 or not INT64_MIN <= int(literal) <= INT64_MAX:
        raise JsonRefused(f"A number has {len(literal)} characters; integers must fit in 64 bits.")
    return int(literal)


def _parse_float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_CHARS:
        raise JsonRefused(f"A number has {len(literal)} characters; at most {MAX_NUMBER_CHARS} are read.")
    value = float(literal)
    if not math.isfinite(value):
        raise JsonRefused(f"The number {literal[:20]} is too large to represent.")
    return value


def _refuse_constant(name: str):
    raise JsonRefused(f"{name} is not a JSON number.")


def _unique_keys(pairs: list) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRefused(f"The key {json.dumps(key)[:80]} appears twice in one object.")
            seen.add(key)
    return result


def _check_shape(value, max_depth: int, check_text: bool = True) -> None:
    """Depth and strings, walked without recursion (a deep value must not recurse here either)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise JsonRefused(f"The JSON is nested more than {max_depth} levels deep.")
            for key, child in item.items():
                if check_text:
                    _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > max_depth:
                raise JsonRefused(f"The JSON is nested more than {max_depth} levels deep.")
            stack.extend((child, depth + 1) for child in item)
        elif check_text and isinstance(item, str):
            _check_text(item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonRefused("A string holds an unpaired surrogate (\\ud800-\\udfff), which is not text.") from None


def loads_bounded(text: str | bytes, max_depth: int = 32, unique_keys: bool = True):
    """``json.loads`` of ``text`` within the limits above; :class:`JsonRefused` (a
    ``ValueError``) with the reason otherwise, ``json.JSONDecodeError`` (also a
    ``ValueError``) for what is not JSON at all. ``unique_keys=False`` lets a repeated
    key through (the last wins), for files made elsewhere (a directory import)."""
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant,
                           object_pairs_hook=_unique_keys if unique_keys else None)
    except RecursionError:
        raise JsonRefused(f"The JSON is nested more than {max_depth} levels deep.") from None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    # The walk is skipped when the text alone shows it would find nothing (counted in C):
    # no more brackets than levels allowed, and no \uD800-\uDFFF escape (the only way a lone
    # surrogate gets in: UTF-8 cannot carry one). A share's body costs ~3 µs more than json.loads, not ~18.
    may_be_deep = text.count("[") + text.count("{") > max_depth
    may_hold_surrogate = _SURROGATE_ESCAPE.search(text) is not None
    if may_be_deep or may_hold_surrogate:
        _check_shape(value, max_depth, check_text=may_hold_surrogate)
    return value
