"""RPC clients between services: nameko's ``ServiceRpc`` / ``ClusterRpc`` as every service uses them.

The classes live in :mod:`weintervene.nameko_extensions` (every extension of nameko and
kombu is there, each with the version it was written against and what it buys); this is
the name services import them by. What they add to nameko's: requests are transient, the
reply queue is declared once per broker connection (not before every request), a lost
reply fails its call (503 at the gateway) instead of killing the service, and replies are
routed by a key named after the caller (:func:`reply_routing_key`).

Example::

    from weintervene.rpc import ServiceRpc

    class ReferralsService:
        identity = ServiceRpc("identity")

        @rpc
        def share(self, auth, data):
            context = self.identity.share_context(auth, data["student_id"], [], [])
"""
from weintervene.nameko_extensions import (  # noqa: F401
    ClusterRpc, ReplyListener, ReplyQueueOncePerConnection, RequestPublisher, ServiceRpc, reply_routing_key,
)

__all__ = ["ClusterRpc", "ServiceRpc", "ReplyListener", "ReplyQueueOncePerConnection", "RequestPublisher",
           "reply_routing_key"]
