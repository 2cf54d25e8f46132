"""The client address behind the ingress: taken from X-Forwarded-For only when told to."""
import pytest
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from gateway.http import behind_proxies, client_ip
from weintervene.config import Settings


@Request.application
def echo_address(request):
    return Response(f"{client_ip(request)} {request.scheme}")


def _seen(hops, headers):
    # The peer is always the ingress pod, 10.0.0.5.
    client = Client(behind_proxies(echo_address, hops))
    return client.get("/", headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.5"}).get_data(as_text=True)


def test_without_trusted_proxies_a_forged_header_changes_nothing():
    assert _seen(0, {"X-Forwarded-For": "203.0.113.9"}) == "10.0.0.5 http"


def test_behind_one_proxy_the_address_it_appended_is_the_client():
    # A client may send its own X-Forwarded-For; the ingress appends the real one.
    headers = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7", "X-Forwarded-Proto": "https"}
    assert _seen(1, headers) == "198.51.100.7 https"


@pytest.mark.parametrize("raw, hops", [("0", 0), ("1", 1), ("2", 2)])
def test_trusted_proxy_hops_from_the_environment(raw, hops):
    assert Settings.from_env({"WEINTERVENE_TRUSTED_PROXY_HOPS": raw}).trusted_proxy_hops == hops
