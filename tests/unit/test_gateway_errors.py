"""The one table: every error kind maps to its status with a JSON body."""
import pytest
from nameko.exceptions import RemoteError, UnknownService

from gateway.errors import error_response
from services.identity.exceptions import InvalidCredentials, LoginThrottled
from services.referrals.exceptions import IdempotencyKeyInUse, IdempotencyKeyReused
from weintervene.errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable


@pytest.mark.parametrize(
    "error, status, code",
    [
        (BadRequest("x", details={"f": ["bad"]}), 400, "bad_request"),
        (InvalidCredentials("nope"), 401, "invalid_credentials"),
        (Forbidden("no"), 403, "forbidden"),
        (NotFound("gone", code="student_not_found"), 404, "student_not_found"),
        (Conflict("dup"), 409, "conflict"),
        (IdempotencyKeyInUse("again"), 409, "idempotency_key_in_use"),
        (IdempotencyKeyReused("other body"), 422, "idempotency_key_reused"),
        (LoginThrottled("slow down"), 429, "login_throttled"),
        (UnknownService("identity"), 503, "service_unavailable"),
        (RemoteError("KeyError", "secret detail"), 500, "internal_error"),
        (ValueError("secret detail"), 500, "internal_error"),
    ],
)
def test_error_response(error, status, code):
    got_status, body = error_response(error)
    assert got_status == status
    assert body["error"]["code"] == code
    assert "secret detail" not in body["error"]["message"]


def test_remote_error_round_trip_keeps_class_code_and_details():
    from nameko.exceptions import deserialize, serialize

    original = NotFound("No such student.", code="student_not_found", details={"id": ["unknown"]})
    again = deserialize(serialize(original))
    assert isinstance(again, NotFound)
    assert (again.code, again.message, again.details) == ("student_not_found", "No such student.", {"id": ["unknown"]})


def test_a_request_whose_service_never_answers_gets_a_504_within_the_route_timeout():
    """A call lost in a broker restart (transient requests) must not hold the caller forever."""
    import json

    import eventlet
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    from gateway.http import ROUTES, route

    def waits_for_a_reply_that_never_comes(self, request, **_):
        eventlet.sleep(30)
        return {"never": True}  # a 200 here would mean the timeout never fired

    handler = route("GET", "/api/v1/test-only/slow", summary="slow", auth=False, timeout=0.2)(
        waits_for_a_reply_that_never_comes)
    ROUTES.pop()  # not a real route: keep it out of the OpenAPI document
    request = Request(EnvironBuilder(path="/api/v1/test-only/slow").get_environ())
    response = handler(object(), request)
    assert response.status_code == 504
    assert json.loads(response.get_data())["error"]["code"] == "service_timeout"


@pytest.mark.parametrize("error, retry_after", [
    (LoginThrottled("slow down"), "60"),
    (Unavailable("The database is busy; share again.", code="database_unavailable"), "5"),
    (UnknownService("identity"), "5"),
    (NotFound("No such student."), None),
])
def test_a_refusal_for_now_says_when_to_try_again(error, retry_after):
    from gateway.http import error_to_response

    response = error_to_response(error)
    assert response.headers.get("Retry-After") == retry_after
