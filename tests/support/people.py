"""Signed-in people of any role for integration tests, made through identity's RPCs."""
from __future__ import annotations

import time

from amqp.exceptions import ConnectionError as AMQPConnectionError

from tests.support.infra import random_suffix
from tests.support.signing import ClusterRpcClient  # signs the contexts it passes, as the gateway does
from weintervene.errors import Conflict

PASSWORD = "a long retention test passphrase"


def call(system, service, method, *args):
    """A standalone RPC; retried, since some tests cut the broker's connections (pooled ones die)."""
    for attempt in range(4):
        try:
            with ClusterRpcClient(uri=system.settings.amqp_uri) as rpc:
                return getattr(getattr(rpc, service), method)(*args)
        except (AMQPConnectionError, OSError):
            if attempt == 3:
                raise
            time.sleep(0.5)


def bootstrap(system, role, tenant_id=None):
    """A new user of ``role`` (in ``tenant_id``), signed in; ``session.user`` is identity's answer.

    Example: bootstrap(system, "auditor").get(system.url("/api/v1/deletion-requests"))
    """
    email = f"{role}-{random_suffix()}@retention.example"
    try:
        user = call(system, "identity", "bootstrap_user",
                    {"email": email, "display_name": role.title(), "role": role, "tenant_id": tenant_id}, PASSWORD)
    except Conflict:  # created by an attempt whose reply was lost to a cut connection
        user = {"email": email}
    session = system.login(email, PASSWORD)
    session.user = user
    return session
