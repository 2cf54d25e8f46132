"""Strict validation of HSDS API output against the spec's compiled schemas.

Strict: every object schema that lists properties gets ``additionalProperties:
false``, so a property the spec does not have fails validation. Documents are checked
strictly against the local HSDS 3.1 files (never the URLs its openapi.json names, which
are 3.0's) and, not strictly, against 3.0's (its required fields and types), since a
3.0 client reads our 3.1 answers.

Example::

    assert_valid("service", document)
    assert_valid_page("service_list", page)
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache

from jsonschema import Draft7Validator

from tests.support.shared_data import hsds_spec

PAGE_PROPERTIES = {
    "total_items": {"type": "integer"}, "total_pages": {"type": "integer"}, "page_number": {"type": "integer"},
    "size": {"type": "integer"}, "first_page": {"type": "boolean"}, "last_page": {"type": "boolean"},
    "empty": {"type": "boolean"},
}


def _strict(node):
    if isinstance(node, dict):
        if "properties" in node and isinstance(node["properties"], dict):
            node["additionalProperties"] = False
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)
    return node


def _inline_refs(node, base):
    """Replace relative ``$ref``s (``taxonomy.json``) with the referenced table schema."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.endswith(".json") and "://" not in ref:
            return _inline_refs(json.loads((base / ref).read_text()), base)
        return {k: _inline_refs(v, base) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, base) for v in node]
    return node


@lru_cache(maxsize=None)
def schema(name: str, version: str = "3.1", strict: bool = True) -> dict:
    """The schema: compiled/<name>.json, or schema/<name>.json for taxonomy tables, of ``version``."""
    base = hsds_spec(version) / "schema"
    path = base / "compiled" / f"{name}.json"
    if not path.exists():
        path = base / f"{name}.json"
    loaded = _inline_refs(copy.deepcopy(json.loads(path.read_text())), path.parent)
    return _strict(loaded) if strict else loaded


@lru_cache(maxsize=None)
def page_schema(item: str, version: str = "3.1", strict: bool = True) -> dict:
    return {
        "type": "object",
        "properties": {**PAGE_PROPERTIES, "contents": {"type": "array", "items": schema(item, version, strict)}},
        "required": list(PAGE_PROPERTIES) + ["contents"],
        "additionalProperties": False,
    }


def _found(validator_schema, document) -> list[str]:
    validator = Draft7Validator(validator_schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)][:10]


def errors(name: str, document, version: str = "3.1", strict: bool = True) -> list[str]:
    return _found(schema(name, version, strict), document)


def assert_valid(name: str, document) -> None:
    found = errors(name, document)
    assert not found, f"{name} does not validate strictly against HSDS 3.1: {found}"
    found = errors(name, document, "3.0", strict=False)
    assert not found, f"{name} does not validate against HSDS 3.0: {found}"


def assert_valid_page(item: str, document) -> None:
    found = _found(page_schema(item), document)
    assert not found, f"Page of {item} does not validate strictly against HSDS 3.1: {found}"
    found = _found(page_schema(item, "3.0", False), document)
    assert not found, f"Page of {item} does not validate against HSDS 3.0: {found}"
