"""nameko's ``rpc`` with our errors declared as expected.

An expected error (a 4xx at the gateway) is logged as a warning, not as a
server error with a traceback.

Example::

    from weintervene.entrypoints import rpc

    class IdentityService:
        @rpc
        def authenticate(self, token): ...
"""
from nameko.rpc import rpc as nameko_rpc

from weintervene.errors import WeInterveneError


def rpc(fn=None, **kwargs):
    kwargs.setdefault("expected_exceptions", (WeInterveneError,))
    if fn is None:
        return nameko_rpc(**kwargs)
    return nameko_rpc(**kwargs)(fn)
