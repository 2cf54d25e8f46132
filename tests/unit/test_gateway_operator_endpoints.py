"""/healthz, /readyz and /metrics are for operators and the cluster, not the public: behind the
ingress a request that came through it gets 404, /metrics moves to its own port when one is set,
and /readyz (the readiness probe) asks no service."""
from __future__ import annotations

import dataclasses
import json

import pytest
from nameko import config as nameko_config
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.routes.system import SystemRoutes
from weintervene.config import Settings


class NoServiceAnswers:
    """A gateway whose every RPC fails the test: /readyz must not make one."""

    @property
    def cluster_rpc(self):
        raise AssertionError("the readiness probe asked a service")


def _get(route, path, headers=None, **settings):
    with nameko_config.patch({"WEINTERVENE": dataclasses.replace(Settings(), **settings)}):
        return route(NoServiceAnswers(), Request(EnvironBuilder(path=path, headers=headers or {}).get_environ()))


def test_readiness_answers_from_the_gateway_alone():
    response = _get(SystemRoutes.readyz, "/readyz", trusted_proxy_hops=1)
    assert response.status_code == 200 and json.loads(response.get_data()) == {"status": "ok"}


@pytest.mark.parametrize("route, path", [(SystemRoutes.readyz, "/readyz"), (SystemRoutes.healthz, "/healthz"),
                                         (SystemRoutes.metrics, "/metrics")])
def test_through_the_ingress_operator_endpoints_are_not_found(route, path):
    response = _get(route, path, {"X-Forwarded-For": "198.51.100.7"}, trusted_proxy_hops=1)
    assert response.status_code == 404
    assert json.loads(response.get_data())["error"]["code"] == "not_found"


def test_metrics_leave_the_http_port_when_they_have_their_own():
    assert _get(SystemRoutes.metrics, "/metrics", metrics_port=9100).status_code == 404
    local = _get(SystemRoutes.metrics, "/metrics")  # make run: no metrics port, served here
    assert local.status_code == 200 and local.mimetype == "text/plain"


def test_without_a_proxy_in_front_a_forwarded_header_changes_nothing():
    # make run and the tests: nothing in front, so the header is the client's own and means nothing.
    response = _get(SystemRoutes.readyz, "/readyz", {"X-Forwarded-For": "198.51.100.7"}, trusted_proxy_hops=0)
    assert response.status_code == 200
