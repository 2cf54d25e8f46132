"""Signing auth contexts in tests that call services' RPCs directly, as the gateway does.

Every service refuses a context the gateway did not sign (:mod:`weintervene.context_signing`).
Tests that sign in through identity's ``login`` RPC and then call services with the
answer's ``user`` hold the gateway's (development) signing key, as the operator CLI does.

``ClusterRpcClient`` here is nameko's, except that each call signs, fresh, the auth
context it passes: the first argument when it is a context dict (``user_id`` and
``role``, no signature yet), and the ``auth`` of each of ``share_contexts``' requests.
Anything else (``None``, a list, a string, a context already signed or forged on
purpose) goes as it is, so a test of a bad context still sends exactly that.

Example::

    from tests.support.signing import ClusterRpcClient, signed

    with ClusterRpcClient(uri=system.settings.amqp_uri) as rpc:
        user = rpc.identity.login({"email": e, "password": p}, client_ip="t")["user"]
        rpc.identity.list_students(user, {})          # signed on the way out
    signed(user)  # -> {..., "expires_at": 1796440230, "signature": "dev-1.…"}
"""
from __future__ import annotations

from nameko.standalone.rpc import ClusterRpcClient as NamekoClusterRpcClient

from weintervene.config import DEV_CONTEXT_SIGNING_KEY
from weintervene.context_signing import SIGNATURE_KEY, sign_context

LIFETIME_SECONDS = 120


def signed(auth: dict, lifetime: float = LIFETIME_SECONDS, key: str = DEV_CONTEXT_SIGNING_KEY) -> dict:
    """``auth`` signed with the development key (the one the test system verifies)."""
    return sign_context(auth, lifetime=lifetime, key_setting=key)


def _signable(value) -> bool:
    return isinstance(value, dict) and "user_id" in value and "role" in value and SIGNATURE_KEY not in value


def _signed_arguments(method: str, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    if args and _signable(args[0]):
        args = (signed(args[0]),) + tuple(args[1:])
    if _signable(kwargs.get("auth")):
        kwargs = {**kwargs, "auth": signed(kwargs["auth"])}
    if method == "share_contexts" and args and isinstance(args[0], list):
        args = ([{**r, "auth": signed(r["auth"])} if isinstance(r, dict) and _signable(r.get("auth")) else r
                 for r in args[0]],) + tuple(args[1:])
    return args, kwargs


class _Method:
    def __init__(self, proxy, name):
        self._proxy, self._name = proxy, name

    def __call__(self, *args, **kwargs):
        args, kwargs = _signed_arguments(self._name, args, kwargs)
        return self._proxy(*args, **kwargs)

    def call_async(self, *args, **kwargs):
        args, kwargs = _signed_arguments(self._name, args, kwargs)
        return self._proxy.call_async(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._proxy, name)


class _Service:
    def __init__(self, proxy):
        self._proxy = proxy

    def __getattr__(self, name):
        return _Method(getattr(self._proxy, name), name)

    def __getitem__(self, name):
        return _Method(self._proxy[name], name)


class _Cluster:
    def __init__(self, proxy):
        self._proxy = proxy

    def __getattr__(self, name):
        return _Service(getattr(self._proxy, name))

    def __getitem__(self, name):
        return _Service(self._proxy[name])


class ClusterRpcClient(NamekoClusterRpcClient):
    """nameko's standalone client; the proxy it gives signs the contexts it passes (see above)."""

    def __enter__(self):
        return _Cluster(super().__enter__())

    def start(self):
        return _Cluster(super().start())
