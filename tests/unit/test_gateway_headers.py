"""Request headers a route declares: checked, handed to the handler, and in the OpenAPI document."""
from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.http import ROUTES, Header, route


@pytest.fixture
def echo_route():
    def echo(self, request, headers, **_):
        return {"headers": headers}

    handler = route("GET", "/api/v1/test-only/echo", summary="echo", auth=False,
                    headers=(Header("Idempotency-Key", "a key", max_length=8),))(echo)
    ROUTES.pop()  # not a real route: keep it out of the OpenAPI document
    return lambda **headers: handler(object(), Request(EnvironBuilder(path="/api/v1/test-only/echo",
                                                                      headers=headers).get_environ()))


def test_a_declared_header_reaches_the_handler_or_is_none(echo_route):
    given = echo_route(**{"Idempotency-Key": "abc"})
    assert given.status_code == 200 and json.loads(given.get_data()) == {"headers": {"Idempotency-Key": "abc"}}
    absent = echo_route()
    assert json.loads(absent.get_data()) == {"headers": {"Idempotency-Key": None}}


@pytest.mark.parametrize("value", ["", "x" * 9])
def test_a_declared_header_of_the_wrong_length_is_400(echo_route, value):
    response = echo_route(**{"Idempotency-Key": value})
    assert response.status_code == 400
    error = json.loads(response.get_data())["error"]
    assert error["code"] == "invalid_header" and "Idempotency-Key" in error["details"]


def test_the_share_route_documents_its_idempotency_key_and_errors():
    import gateway.service  # noqa: F401  (registers every route)
    from gateway.openapi import openapi_document

    document = openapi_document()
    validate(document)
    share = document["paths"]["/api/v1/referrals"]["post"]
    [header] = [p for p in share["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key" and header["required"] is False
    assert header["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
    assert "idempotency_key_reused" in share["responses"]["422"]["description"]
    assert "201" in share["responses"] and "409" in share["responses"]
    # Only the routes that declare a header document one.
    listing = document["paths"]["/api/v1/referrals"]["get"]
    assert not [p for p in listing.get("parameters", []) if p["in"] == "header"]
