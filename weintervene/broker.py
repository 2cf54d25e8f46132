"""One RabbitMQ user per service, each allowed its own queues and exchanges only.

With one shared broker account, a leaked credential (a service's, or the operator's)
could consume any service's queue (every request, with the caller's signed context and
arguments) and call any RPC, including those no user signs for (a family's contact
details for delivery, whole-tenant exports). Here each component has its own user:

- **permissions** (``set_permissions``: configure / write / read regexes on names):
  a service declares, binds and consumes its own RPC queue ``rpc-<service>``, its own
  reply queues ``rpc.reply-<service>-<uuid>`` and its own event-handler queues
  ``evt-<source>-<event>--<service>.<method>[-<uuid>]``; it publishes to the
  ``nameko-rpc`` exchange and to its own ``<service>.events`` exchange. It may also
  declare and bind (configure, write) the durable queues of *its own* events
  (``evt-<service>-…``, so nothing it publishes is lost before the consumer first
  starts) but never read them. Nobody may read another's queue: ``ACCESS_REFUSED``.
- **topic permissions** on ``nameko-rpc`` and every ``<service>.events`` exchange limit
  the routing keys: *write* is which RPCs (``<service>.<method>``) and which events a
  user may publish; *read* is which keys it may bind a queue with, so a user cannot
  bind a queue of its own to ``nameko-rpc`` with ``identity.*`` and copy identity's
  requests. RPC replies go to a reply queue's routing key, a bare UUID: services may
  publish those.
- RPCs no user signs for (:data:`INTERNAL_RPCS`) may be published only by the
  components listed for them; every other RPC of a service the component calls
  (:data:`CALLS`) takes a signed context or is public (login, the SMS callback).

The table is data (:func:`permissions_for`); :func:`provision` puts it on a broker
through the management API, idempotently; ``deploy/k8s/base/09-broker-users.yaml`` is the
same table for the messaging-topology operator (``tests/unit/test_broker_permissions.py``
checks the two agree). ``docs/SECURITY.md`` ("The broker") has the table in prose.

Example::

    >>> rpc_topic = permissions_for("gateway").topics[0]          # on nameko-rpc
    >>> bool(re.fullmatch(rpc_topic.write, "identity.list_students")), bool(re.fullmatch(rpc_topic.write, "identity.delivery_contacts"))
    (True, False)
    >>> provision("http://guest:guest@127.0.0.1:15672", "/", ensure_credentials(Path("data/broker-credentials.json")))
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from weintervene.config import SERVICES
from weintervene.contracts import (
    DELETION_COMPLETED, DELETION_REQUESTED, PLATFORM_ACTION, REFERRAL_CLOSED, SESSIONS_ENDED, SHARE_RECORDED,
    SUBSCRIPTIONS,
)

RPC_EXCHANGE = "nameko-rpc"
OPERATOR = "operator"  # the operator's CLI (`weintervene demo`, `create-user`): trusted RPCs like bootstrap_user
COMPONENTS = SERVICES + ("gateway", OPERATOR)
STANDALONE_CLIENT = "standalone_rpc_client"  # nameko's name for a client outside any service (the CLI)
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

# Which services' RPCs each component calls at all.
CALLS: dict[str, tuple[str, ...]] = {
    "gateway": SERVICES,
    # The operator's CLI signs contexts as the gateway does (it holds the signing key) and demo
    # loaders of any context may call their service: the gateway's reach, plus the bootstrap.
    OPERATOR: SERVICES,
    "identity": (),
    "directory": ("identity",),
    "referrals": ("identity", "directory"),
    "analytics": ("identity", "directory"),
    "retention": SERVICES,  # identity's checks, every data service's export
}

_EXPORTS = {(service, method): frozenset({"retention"}) for service in SERVICES
            for method in ("export_tenant", "export_student")}

INTERNAL_RPCS: dict[tuple[str, str], frozenset[str]] = {
    # No user signs for these (timers, deliveries, exports, the operator's bootstrap): only
    # the components named may publish them. Every other RPC needs a signed context or is public.
    ("identity", "delivery_contacts"): frozenset({"referrals"}),  # a family's email and mobile
    ("identity", "user_info"): frozenset({"referrals", "retention"}),
    ("identity", "names_for_audit"): frozenset({"retention"}),  # staff and tenant names, never students
    ("identity", "fence_subject"): frozenset({"retention"}),
    ("identity", "left_students"): frozenset({"retention"}),  # its left_students policies
    ("identity", "bootstrap_user"): frozenset({OPERATOR}),  # makes any account, operators included
    ("identity", "user_exists"): frozenset({OPERATOR}),
    ("identity", "tenant_info"): frozenset({"directory", "referrals", "analytics", "retention", OPERATOR}),
    ("identity", "tenants_info"): frozenset({"analytics"}),
    ("identity", "list_tenants_in"): frozenset({"analytics", "retention"}),
    # Single sign-on's two legs: only the gateway carries a browser to the provider and back.
    ("identity", "sso_begin"): frozenset({"gateway"}),
    ("identity", "sso_complete"): frozenset({"gateway"}),
    ("directory", "get_terms"): frozenset({"analytics"}),
    ("analytics", "load_demo_history"): frozenset({OPERATOR}),  # demo mode only, refused otherwise
    ("directory", "count_services"): frozenset({"analytics"}),
    ("retention", "run_due_policies"): frozenset(),  # its own timer's work; nobody calls it
    **_EXPORTS,
}

EVENTS_PUBLISHED: dict[str, tuple[str, ...]] = {
    "identity": (SESSIONS_ENDED, DELETION_COMPLETED),
    "directory": (DELETION_COMPLETED,),
    "referrals": (SHARE_RECORDED, REFERRAL_CLOSED, DELETION_COMPLETED),
    "analytics": (DELETION_COMPLETED,),
    "retention": (DELETION_REQUESTED, PLATFORM_ACTION),
    "gateway": (),
    OPERATOR: (),
}

# (source, event) -> consumers: the durable subscriptions plus the gateways' broadcast queue.
EVENTS_CONSUMED: dict[str, tuple[tuple[str, str], ...]] = {
    component: tuple(sorted({key for key, consumers in SUBSCRIPTIONS.items() for c, _m in consumers if c == component}
                            | ({("identity", SESSIONS_ENDED)} if component == "gateway" else set())))
    for component in COMPONENTS
}


def events_exchange(service: str) -> str:
    return f"{service}.events"


def _alternatives(patterns) -> str:
    return "^(" + "|".join(patterns) + ")$" if patterns else "^$"


@dataclasses.dataclass(frozen=True)
class TopicPermission:
    exchange: str
    write: str
    read: str


@dataclasses.dataclass(frozen=True)
class Permissions:
    """What one broker user may do in the vhost: ``set_permissions`` and ``set_topic_permissions``."""

    configure: str
    write: str
    read: str
    topics: tuple[TopicPermission, ...]


def callable_rpcs(caller: str, service: str) -> str:
    """The routing-key regex (no anchors) of ``service``'s RPCs that ``caller`` may publish."""
    denied = sorted(method for (svc, method), callers in INTERNAL_RPCS.items()
                    if svc == service and caller not in callers)
    guard = f"(?!({'|'.join(denied)})$)" if denied else ""
    return f"{re.escape(service)}\\.{guard}[A-Za-z0-9_]+"


def permissions_for(component: str) -> Permissions:
    """The permission table's row for one component (a service, the gateway or the operator).

    Example: permissions_for("gateway").topics[0].write  # the RPCs the gateway may publish
    """
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}")
    name = re.escape(STANDALONE_CLIENT if component == OPERATOR else component)
    serves = component in SERVICES
    own_queues = [f"rpc\\.reply-{name}-.*", f"evt-.*--{name}\\..*"] + ([f"rpc-{name}"] if serves else [])
    published_queues = [f"evt-{re.escape(component)}-.*"] if EVENTS_PUBLISHED[component] else []
    own_exchange = [re.escape(events_exchange(component))] if EVENTS_PUBLISHED[component] else []
    sources = sorted({re.escape(events_exchange(source)) for source, _event in EVENTS_CONSUMED[component]})
    configure = [re.escape(RPC_EXCHANGE)] + own_exchange + sources + own_queues + published_queues
    write = [re.escape(RPC_EXCHANGE)] + own_exchange + own_queues + published_queues
    read = [re.escape(RPC_EXCHANGE)] + own_exchange + sources + own_queues
    rpc_write = [callable_rpcs(component, service) for service in CALLS[component]]
    # Its reply queues' bindings: "reply-<component>-<uuid>" (weintervene.rpc.reply_routing_key);
    # the CLI's nameko standalone client binds a bare uuid.
    rpc_read = [UUID] if component == OPERATOR else [f"reply-{re.escape(component)}-{UUID}"]
    if serves:
        rpc_write += [f"reply-[a-z_]+-{UUID}", UUID]  # replies to its callers (services; the CLI)
        rpc_read.append(f"{re.escape(component)}\\.\\*")  # its own RPC queue's binding
    topics = [TopicPermission(RPC_EXCHANGE, _alternatives(rpc_write), _alternatives(rpc_read))]
    for service in SERVICES:
        exchange = events_exchange(service)
        events = [re.escape(e) for e in EVENTS_PUBLISHED[component]] if service == component else []
        # Binding keys: the events it consumes from that source, and its own events (its
        # publisher declares and binds their durable queues).
        keys = {event for source, event in EVENTS_CONSUMED[component] if source == service}
        if service == component:
            keys |= set(EVENTS_PUBLISHED[component])
        topics.append(TopicPermission(exchange, _alternatives(events),
                                      _alternatives(sorted(re.escape(k) for k in keys))))
    return Permissions(_alternatives(configure), _alternatives(write), _alternatives(read), tuple(topics))


# -- credentials ---------------------------------------------------------------

def user_name(component: str, prefix: str = "wi-") -> str:
    return f"{prefix}{component}"


def load_credentials(path: Path) -> dict[str, dict]:
    """{component: {"user", "password"}} kept by :func:`ensure_credentials`, or {}."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {}


def ensure_credentials(path: Path, prefix: str = "wi-") -> dict[str, dict]:
    """Every component's user and password, generated once and kept in ``path`` (mode 0600).

    Example: ensure_credentials(Path("data/broker-credentials.json"))["gateway"] ->
    {"user": "wi-gateway", "password": "…"}
    """
    path = Path(path)
    credentials = load_credentials(path)
    changed = False
    for component in COMPONENTS:
        if component not in credentials or credentials[component].get("user") != user_name(component, prefix):
            credentials[component] = {"user": user_name(component, prefix), "password": secrets.token_urlsafe(24)}
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(credentials, out, indent=2)
        os.replace(path.with_suffix(".tmp"), path)
    return credentials


def uri_for(amqp_uri: str, user: str, password: str) -> str:
    """``amqp_uri`` (host, port, vhost) with another user's credentials.

    Example: uri_for("amqp://guest:guest@localhost:5672/", "wi-identity", "p") ->
    'amqp://wi-identity:p@localhost:5672/'
    """
    parts = urlsplit(amqp_uri)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{quote(user, safe='')}:{quote(password, safe='')}@{host}",
                       parts.path, parts.query, parts.fragment))


def vhost_of(amqp_uri: str) -> str:
    path = urlsplit(amqp_uri).path
    return unquote(path[1:]) if len(path) > 1 else "/"


# -- provisioning through the management API ----------------------------------------

def provision(management_url: str, vhost: str, credentials: dict[str, dict], components=COMPONENTS) -> None:
    """Create or update each component's user, permissions and topic permissions (idempotent).

    ``management_url`` carries the administrator's credentials
    (``http://admin:secret@127.0.0.1:15672``); the users get no management tags.
    """
    import requests

    parts = urlsplit(management_url)
    auth = (unquote(parts.username or ""), unquote(parts.password or ""))
    base = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path.rstrip("/"), "", "")) + "/api"
    v = quote(vhost, safe="")
    with requests.Session() as http:
        http.auth = auth

        def put(path: str, body: dict) -> None:
            answer = http.put(base + path, json=body, timeout=10)
            if answer.status_code not in (200, 201, 204):
                raise RuntimeError(f"RabbitMQ management PUT {path}: {answer.status_code} {answer.text[:200]}")

        for component in components:
            user = credentials[component]["user"]
            u = quote(user, safe="")
            put(f"/users/{u}", {"password": credentials[component]["password"], "tags": ""})
            allowed = permissions_for(component)
            put(f"/permissions/{v}/{u}", {"configure": allowed.configure, "write": allowed.write,
                                          "read": allowed.read})
            for topic in allowed.topics:
                put(f"/topic-permissions/{v}/{u}", {"exchange": topic.exchange, "write": topic.write,
                                                    "read": topic.read})


def remove_users(management_url: str, users) -> None:
    """Delete the named users (tests clean up what they made). Never call this with ``guest``."""
    import requests

    parts = urlsplit(management_url)
    base = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path.rstrip("/"), "", "")) + "/api"
    for user in users:
        if user == "guest":
            raise ValueError("the guest user is not ours to delete")
        requests.delete(f"{base}/users/{quote(user, safe='')}", timeout=10,
                        auth=(unquote(parts.username or ""), unquote(parts.password or "")))


# -- the deployment's copy of the table ------------------------------------------------

K8S_NAMESPACE = "weintervene"
K8S_CLUSTER = "rabbitmq"  # the RabbitmqCluster the messaging-topology operator manages


def k8s_secret_name(component: str) -> str:
    """The Secret holding a component's broker ``username``, ``password`` and ``amqp_uri``."""
    return f"weintervene-broker-{component}"


def k8s_manifests(vhost: str = "/") -> str:
    """The table as the messaging-topology operator's ``User``, ``Permission`` and
    ``TopicPermission`` objects (``deploy/k8s/base/09-broker-users.yaml``; regenerate with
    ``python -m weintervene.broker > deploy/k8s/base/09-broker-users.yaml``). Each ``User``
    imports its credentials from the component's own Secret, which the operator creates
    from the vault (``username``, ``password`` and ``amqp_uri``; never committed).
    """
    import yaml

    cluster = {"name": K8S_CLUSTER}
    documents = []
    for component in COMPONENTS:
        user = user_name(component)
        allowed = permissions_for(component)
        meta = {"namespace": K8S_NAMESPACE, "labels": {"app.kubernetes.io/name": "weintervene",
                                                     "app.kubernetes.io/component": component}}
        documents.append({"apiVersion": "rabbitmq.com/v1beta1", "kind": "User",
                          "metadata": {"name": user, **meta},
                          "spec": {"tags": [], "rabbitmqClusterReference": cluster,
                                   "importCredentialsSecret": {"name": k8s_secret_name(component)}}})
        documents.append({"apiVersion": "rabbitmq.com/v1beta1", "kind": "Permission",
                          "metadata": {"name": user, **meta},
                          "spec": {"vhost": vhost, "user": user, "rabbitmqClusterReference": cluster,
                                   "permissions": {"configure": allowed.configure, "write": allowed.write,
                                                   "read": allowed.read}}})
        for topic in allowed.topics:
            documents.append({"apiVersion": "rabbitmq.com/v1beta1", "kind": "TopicPermission",
                              "metadata": {"name": f"{user}-{topic.exchange.replace('.', '-')}", **meta},
                              "spec": {"vhost": vhost, "user": user, "rabbitmqClusterReference": cluster,
                                       "permissions": {"exchange": topic.exchange, "write": topic.write,
                                                       "read": topic.read}}})
    header = ("# One RabbitMQ user per component, its permissions and topic permissions: the table of\n"
              "# weintervene/broker.py (docs/SECURITY.md, \"The broker\"), for the messaging-topology operator.\n"
              "# Generated: python -m weintervene.broker > deploy/k8s/base/09-broker-users.yaml\n"
              "# Each User's credentials come from its Secret weintervene-broker-<component> (keys username,\n"
              "# password, amqp_uri), created by the operator from the vault, never committed.\n")
    return header + "---\n".join(yaml.safe_dump(d, sort_keys=False, width=1000) for d in documents)


if __name__ == "__main__":
    print(k8s_manifests(), end="")
