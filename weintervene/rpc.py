"""RPC clients for services: nameko's ``ServiceRpc`` / ``ClusterRpc``, minus three broker
round trips on every call.

nameko 3 declares the caller's reply queue again before *every* request it publishes
(``declare=[reply_queue]``): an ``exchange.declare``, a ``queue.declare`` and a
``queue.bind``, each a synchronous round trip to RabbitMQ, and kombu cannot remember
the declaration because the queue has ``x-expires``. Measured on the demo data, that
was about a quarter of the whole system's CPU per API request (``py-spy`` on
``GET /api/v1/tenants/<id>``: 112 of 465 worker samples in ``maybe_declare``), and
three of the four round trips of each call.

Here the reply queue is declared once per publishing connection instead (kombu's
cache of declared entities, which it clears when a connection is closed or
re-established). What nameko's re-declaring guards against still holds:

* the queue cannot expire while in use: ``x-expires`` only counts time without a
  consumer, and the caller's reply consumer is attached from the service's start
  (``ReplyListener.start`` waits for it) and re-declares the queue itself on every
  reconnection;
* after a broker restart (the queue is not durable) every pooled connection is new,
  so the first request on each declares the queue again before publishing.

Example::

    class GatewayService:
        identity_rpc = ServiceRpc("identity")   # as nameko.rpc.ServiceRpc
"""
from __future__ import annotations

from kombu import Queue
from nameko import rpc as nameko_rpc


class ReplyQueue(Queue):
    """The reply queue, as a declaration kombu may cache per connection."""

    can_cache_declaration = True


class _ReplyQueueDeclaredOnce:
    def setup(self):
        super().setup()
        self.publisher.declare = [ReplyQueue(**self.reply_listener.queue.as_dict())]


class ClusterRpc(_ReplyQueueDeclaredOnce, nameko_rpc.ClusterRpc):
    """``nameko.rpc.ClusterRpc`` whose requests do not re-declare the reply queue each time."""


class ServiceRpc(_ReplyQueueDeclaredOnce, nameko_rpc.ServiceRpc):
    """``nameko.rpc.ServiceRpc`` whose requests do not re-declare the reply queue each time."""
