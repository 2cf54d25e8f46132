"""Strict-Transport-Security: on every response served over HTTPS (the scheme a trusted proxy
reports, or an https public URL), never on local HTTP, and configurable off."""
from __future__ import annotations

import pytest
import requests
from werkzeug.routing import Map, Rule
from werkzeug.test import Client
from werkzeug.wrappers import Response

from gateway.http import JsonWsgiApp, behind_proxies

HSTS = "Strict-Transport-Security"


class _Page:
    def handle_request(self, request):
        return Response("ok")


class _Server:
    """What nameko's WsgiApp asks of its server: the URL map (one page)."""

    def make_url_map(self):
        return Map([Rule("/page", endpoint=_Page())])


def _headers(hops: int, path: str, **headers):
    client = Client(behind_proxies(JsonWsgiApp(_Server()), hops))
    return client.get(path, headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.5"}).headers


@pytest.mark.parametrize("path", ["/page", "/no-such-page"])  # a page and a 404
def test_behind_a_trusted_proxy_that_says_https_every_response_has_hsts(path, patch_settings):
    patch_settings(trusted_proxy_hops=1, public_base_url="http://127.0.0.1:8000", hsts_max_age_seconds=31536000)
    assert _headers(1, path, **{"X-Forwarded-Proto": "https"})[HSTS] == "max-age=31536000; includeSubDomains"
    # Plain HTTP through the proxy, or a client claiming https with no trusted proxy: none.
    assert HSTS not in _headers(1, path, **{"X-Forwarded-Proto": "http"})
    patch_settings(trusted_proxy_hops=0)
    assert HSTS not in _headers(0, path, **{"X-Forwarded-Proto": "https"})


def test_local_http_has_none_and_an_https_public_url_gives_every_response_hsts(system, patch_settings):
    paths = ("/healthz", "/api/v1/no-such-endpoint", "/api/v1/me", "/")  # 200/503, 404, 401, the web app
    for path in paths:
        assert HSTS not in requests.get(system.url(path), timeout=30).headers, path
    patch_settings(public_base_url="https://app.weintervene.example", hsts_max_age_seconds=600)
    for path in paths:
        r = requests.get(system.url(path), timeout=30)
        assert r.headers.get(HSTS) == "max-age=600; includeSubDomains", (path, r.status_code)
    patch_settings(hsts_max_age_seconds=0)  # configured off
    assert HSTS not in requests.get(system.url("/healthz"), timeout=30).headers
