"""Every 4xx is logged on one line without a traceback; tracebacks only for 5xx (issue 16).

A teacher asks for a student that does not exist: identity refuses (nameko logs the
worker's error) and the gateway answers 404. Before: nameko's record of that expected
error carried the whole traceback, and the gateway logged nothing of the refusal.
"""
from __future__ import annotations

import logging
import sys
import uuid

import pytest

from tests.support.world import build_world
from weintervene.error_logging import RefusalsOnOneLine
from weintervene.errors import NotFound, Unavailable


@pytest.fixture(scope="module")
def world(system):
    return build_world(system)


def _lines(record: logging.LogRecord) -> str:
    return logging.Formatter("%(levelname)s %(name)s: %(message)s").format(record)


def test_a_refusal_is_one_line_at_the_gateway_and_in_the_service(world, system, caplog):
    caplog.set_level(logging.INFO)
    r = world.http("teacher").get(system.url(f"/api/v1/students/{uuid.uuid4()}"), timeout=30)
    assert r.status_code == 404
    r = world.http("teacher").post(system.url("/api/v1/sessions/nothing-here"), json={}, timeout=30)
    assert r.status_code in (404, 405)
    records = list(caplog.records)
    formatted = [_lines(rec) for rec in records]
    assert not [f for rec, f in zip(records, formatted) if rec.exc_info or "Traceback" in f], formatted
    assert all("\n" not in f for f in formatted), [f for f in formatted if "\n" in f]
    gateway = [f for f in formatted if "gateway.http" in f and "-> 404" in f]
    assert any("GET /api/v1/students/<student_id> -> 404 StudentNotFound student_not_found: No such student." in f
               for f in gateway), formatted
    assert any("/api/v1/sessions/nothing-here" in f for f in formatted if "gateway.http" in f), formatted
    service = [f for f in formatted if "nameko.containers" in f and "identity.get_student" in f]
    assert service and all("StudentNotFound student_not_found: No such student." in f for f in service), formatted


def test_a_bad_body_is_one_line_too(system, caplog):
    caplog.set_level(logging.INFO)
    r = system.client().post(system.url("/api/v1/sessions"), data=b"[" * 50_000,
                             headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400
    formatted = [_lines(rec) for rec in caplog.records]
    assert any("POST /api/v1/sessions -> 400 BadRequest malformed_json" in f for f in formatted), formatted
    assert not [rec for rec in caplog.records if rec.exc_info]


def _record(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except type(exc):
        exc_info = sys.exc_info()
    return logging.LogRecord("nameko.containers", logging.WARNING, __file__, 1,
                             "(expected) error handling worker %s: %s", ("<WorkerContext [x.y]>", exc), exc_info)


def test_only_the_callers_mistakes_lose_their_traceback():
    refusal = _record(NotFound("No such\nstudent.", code="student_not_found"))
    assert RefusalsOnOneLine().filter(refusal) and refusal.exc_info is None
    assert _lines(refusal) == ("WARNING nameko.containers: (expected) error handling worker <WorkerContext [x.y]>: "
                               "NotFound student_not_found: No such student.")
    ours = _record(Unavailable("The database refused the work for now.", code="unavailable"))  # a 503
    assert RefusalsOnOneLine().filter(ours) and ours.exc_info is not None
    assert "Traceback" in _lines(ours)
