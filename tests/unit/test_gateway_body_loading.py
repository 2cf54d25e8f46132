"""A route's body: loaded by the gateway, or only checked and passed on when its service loads it."""
from __future__ import annotations

import json

import pytest
from marshmallow import Schema, fields
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.http import ROUTES, route


class NoteSchema(Schema):
    note = fields.String(required=True)
    service_id = fields.UUID(required=True)


def _handler(body_loaded_by_service: bool):
    received = []

    def echo(self, request, body, **_):
        received.append(body)
        return {"ok": True}

    handler = route("POST", "/api/v1/test-only/body", summary="body", auth=False, body=NoteSchema,
                    body_loaded_by_service=body_loaded_by_service)(echo)
    ROUTES.pop()  # not a real route: keep it out of the OpenAPI document

    def post(payload):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        environ = EnvironBuilder(path="/api/v1/test-only/body", method="POST", data=data,
                                 content_type="application/json").get_environ()
        return handler(object(), Request(environ))

    return post, received


SERVICE_ID = "6C1D2F7E-3B9A-4E8D-A1C2-7F6E5D4C3B2A"


def test_the_gateway_loads_a_body_by_default():
    post, received = _handler(body_loaded_by_service=False)
    assert post({"note": "hi", "service_id": SERVICE_ID}).status_code == 200
    assert received == [{"note": "hi", "service_id": SERVICE_ID.lower()}]  # loaded and made JSON again
    bad = post({"note": 3, "extra": 1})
    assert bad.status_code == 400
    assert {"note", "extra", "service_id"} <= set(json.loads(bad.get_data())["error"]["details"])
    assert len(received) == 1


def test_a_body_its_service_loads_passes_as_sent():
    post, received = _handler(body_loaded_by_service=True)
    # Not loaded here: the service loads it with the same schema and answers its 400.
    assert post({"note": 3, "extra": 1}).status_code == 200
    assert received == [{"note": 3, "extra": 1}]


@pytest.mark.parametrize("payload", [b"[1, 2]", b"not json", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_400_before_any_service(payload):
    post, received = _handler(body_loaded_by_service=True)
    response = post(payload)
    assert response.status_code == 400
    assert json.loads(response.get_data())["error"]["code"] in ("invalid_input", "malformed_json")
    assert received == []
