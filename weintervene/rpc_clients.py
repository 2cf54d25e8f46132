"""RPC clients (nameko's ``ClusterRpc`` / ``ServiceRpc``) whose container lives on when replies are lost.

nameko's reply listener checks, each time it (re)connects, whether its reply queue
exists while calls wait for replies. If not, it raises
``ReplyQueueExpiredWithPendingReplies`` in its consumer thread, and nameko kills the
whole container: the service stays down in a process that looks alive. The queue is
missing when a call was made before the listener first declared it (a request reaching
the gateway while it starts: seen when the broker-restart test,
``tests/integration/test_retention_broker_restart.py``, polled ``/healthz`` during
start-up, and the gateway died), or after an outage longer than the queue's expiry
(nameko's ``x-expires``, 5 minutes; a broker restart alone keeps it, it is durable).

Here those calls fail instead (the gateway answers 503, a timer tries again at its next
tick), and the listener goes on consuming from the queue it declares next.

Example::

    class ReferralsService:
        identity = ServiceRpc("identity")     # from weintervene.rpc_clients, not nameko.rpc
"""
from __future__ import annotations

import logging

from amqp.exceptions import NotFound
from kombu import Connection
from nameko import config
from nameko import rpc as nameko_rpc
from nameko.constants import AMQP_SSL_CONFIG_KEY
from nameko.exceptions import ReplyQueueExpiredWithPendingReplies

log = logging.getLogger(__name__)


class ReplyListener(nameko_rpc.ReplyListener):
    """nameko's reply listener, failing the calls whose replies were lost instead of dying."""

    def check_for_lost_replies(self):
        if not self.pending:
            return
        try:
            # A connection of its own: a passive declare that fails closes its channel,
            # which must not be a pooled connection's channel that others use next.
            with Connection(self.amqp_uri, ssl=config.get(AMQP_SSL_CONFIG_KEY)) as conn:
                self.queue.bind(conn).queue_declare(passive=True)
        except NotFound:
            self.fail_pending_calls()

    def fail_pending_calls(self) -> int:
        """Raise ReplyQueueExpiredWithPendingReplies in every waiting caller; returns how many."""
        lost, self.pending = self.pending, {}
        log.warning("%s: the reply queue was gone on reconnecting; failing %d call(s) whose replies are lost",
                    self.container.service_name, len(lost))
        for correlation_id, reply_event in lost.items():
            if not reply_event.ready():
                reply_event.send_exception(
                    ReplyQueueExpiredWithPendingReplies(f"reply lost for correlation id {correlation_id}"))
        return len(lost)


class ClusterRpc(nameko_rpc.ClusterRpc):
    reply_listener = ReplyListener()


class ServiceRpc(nameko_rpc.ServiceRpc):
    reply_listener = ReplyListener()
