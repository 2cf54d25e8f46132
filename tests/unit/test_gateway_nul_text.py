"""Text holding U+0000 is a 400 at the gateway, in a body, a query or a path value: PostgreSQL
cannot store it, and it came back a 500 (found by tests/security/test_openapi_fuzz.py on
``POST /api/v1/directory/services``)."""
from __future__ import annotations

import json

import pytest
from marshmallow import Schema, fields
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.http import ROUTES, route


class NameSchema(Schema):
    name = fields.String(required=True)
    tags = fields.List(fields.String())


class SearchSchema(Schema):
    q = fields.String()


def _route(body_loaded_by_service: bool = False):
    calls = []

    def handler(self, request, **kwargs):
        calls.append(kwargs)
        return {"ok": True}

    with_body = route("POST", "/api/v1/test-only/nul/<token>", summary="nul", auth=False, body=NameSchema,
                      query=SearchSchema, body_loaded_by_service=body_loaded_by_service)(handler)
    ROUTES.pop()  # not a real route: keep it out of the OpenAPI document

    def post(payload, query="", token="t"):
        environ = EnvironBuilder(path="/api/v1/test-only/nul/x", method="POST", query_string=query,
                                 data=json.dumps(payload).encode(), content_type="application/json").get_environ()
        return with_body(object(), Request(environ), token=token)

    return post, calls


@pytest.mark.parametrize("loaded_by_service", [False, True])
@pytest.mark.parametrize("payload, field", [
    ({"name": "Tutoring\u0000"}, "name"),
    ({"name": "ok", "tags": ["a", "b\u0000"]}, "tags.1"),
])
def test_nul_in_a_body_is_a_400_naming_the_field_and_reaches_no_handler(loaded_by_service, payload, field):
    post, calls = _route(loaded_by_service)
    answer = post(payload)
    assert answer.status_code == 400
    error = json.loads(answer.get_data())["error"]
    assert error["code"] == "invalid_input" and field in error["details"]
    assert calls == []


def test_nul_in_a_query_value_is_a_400():
    post, calls = _route()
    answer = post({"name": "ok"}, query="q=a%00b")
    assert answer.status_code == 400 and "q" in json.loads(answer.get_data())["error"]["details"]
    assert calls == []


def test_nul_in_a_path_value_is_a_400():
    post, calls = _route()
    answer = post({"name": "ok"}, token="abc\u0000")
    assert answer.status_code == 400 and "token" in json.loads(answer.get_data())["error"]["details"]
    assert calls == []


def test_text_without_nul_passes():
    post, calls = _route()
    assert post({"name": "Tutoring \u00e9\u4e2d"}, query="q=ok").status_code == 200
    assert len(calls) == 1
