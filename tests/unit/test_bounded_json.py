"""weintervene.bounded_json: JSON from outside within limits, refused with a reason."""
from __future__ import annotations

import json

import pytest

from weintervene.bounded_json import JsonRefused, loads_bounded


@pytest.mark.parametrize("text, reason", [
    ("[" * 100_000 + "]" * 100_000, "nested"),
    ("[" * 33 + "]" * 33, "nested"),
    ('{"a": ' * 33 + "1" + "}" * 33, "nested"),
    ("7" * 100_000, "64 bits"),
    ("9223372036854775808", "64 bits"),
    ("0." + "1" * 100, "characters"),
    ("1e999", "too large"),
    ("-1e999", "too large"),
    ("NaN", "NaN"),
    ("Infinity", "Infinity"),
    ('{"a": 1, "a": 2}', "twice"),
    ('["\\udc00"]', "surrogate"),
    ('{"\\ud800": 1}', "surrogate"),
])
def test_refused_with_its_reason(text, reason):
    with pytest.raises(JsonRefused) as refused:
        loads_bounded(text)
    assert reason in str(refused.value)


def test_ordinary_json_is_as_json_loads_reads_it():
    text = '{"a": [1, -2.5, "x", null, true, {"b": -9223372036854775808}], "c": "\\ud83d\\ude00"}'
    assert loads_bounded(text) == json.loads(text)
    assert loads_bounded("[" * 32 + "]" * 32) == json.loads("[" * 32 + "]" * 32)
    assert loads_bounded('{"a": 1, "a": 2}', unique_keys=False) == {"a": 2}


def test_not_json_stays_a_decode_error():
    with pytest.raises(json.JSONDecodeError):
        loads_bounded("{not json")
