"""Every service's ``@rpc``: nameko's ``rpc`` with our errors expected, the caller's signed
context verified before the method runs, and replies sent without waiting for a confirm.

The classes live in :mod:`weintervene.nameko_extensions` (every extension of nameko and
kombu is there, each with the version it was written against and what it buys); this is
the name services import them by.

- An expected error (a 4xx at the gateway) is logged as a warning on one line, not as a
  server error with a traceback (:mod:`weintervene.error_logging`).
- A method whose first parameter is named ``auth`` gets it only if the gateway's signature
  on it holds (:mod:`weintervene.context_signing`), and ``@rpc(signed_contexts=fn)`` names
  contexts carried inside the arguments; an unsigned, altered or expired context is
  answered 401 ``not_authenticated`` and the method never runs. A method for
  service-to-service use only names its first parameter otherwise (``sharer``,
  ``request``) and is guarded by the broker's topic permissions (:mod:`weintervene.broker`).
- A database that refused the work for now answers ``Unavailable`` (503), not a 500.
- Replies are transient and published without a confirm (a confirm protects nothing
  there: the caller's reply queue dies with the broker). Requests keep theirs.

Every service's RPC methods must come from this ``rpc`` (not nameko's): one service's
methods are served by one consumer of its queue.

Example::

    from weintervene.entrypoints import rpc

    class IdentityService:
        @rpc
        def authenticate(self, token): ...
"""
from weintervene.nameko_extensions import ReplyPublisher, Responder, Rpc, RpcConsumer, rpc  # noqa: F401

__all__ = ["rpc", "Rpc", "RpcConsumer", "Responder", "ReplyPublisher"]
