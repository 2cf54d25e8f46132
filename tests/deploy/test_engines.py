"""The engines in the overlays agree with the application: a three-node RabbitMQ over TLS whose
users are the components', a three-instance PostgreSQL whose databases and roles are the
services', reached through a transaction-mode PgBouncer sized for every service's pool, with
TLS verify-full against a CA from a Secret."""
from __future__ import annotations

import pytest

from tests.deploy.manifests import built, of_kind
from weintervene.config import SERVICES
from weintervene.db import make_engine

PRODUCTION = "production"


def _env(container) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def _main(deployment):
    return deployment["spec"]["template"]["spec"]["containers"][0]


def test_rabbitmq_is_three_nodes_over_tls_only():
    documents = built(PRODUCTION)
    [cluster] = of_kind(documents, "RabbitmqCluster").values()
    assert cluster["spec"]["replicas"] == 3
    tls = cluster["spec"]["tls"]
    assert tls["disableNonTLSListeners"] is True
    certificate = next(c for c in of_kind(documents, "Certificate").values() if c["spec"]["secretName"] == tls["secretName"])
    assert "rabbitmq.weintervene.svc" in certificate["spec"]["dnsNames"]


def test_every_broker_user_is_of_this_cluster_and_every_component_runs_as_its_own():
    documents = built(PRODUCTION)
    [cluster] = of_kind(documents, "RabbitmqCluster")
    references = [d for d in documents if "rabbitmqClusterReference" in d.get("spec", {})]
    assert references and all(d["spec"]["rabbitmqClusterReference"]["name"] == cluster for d in references)
    credentials = {u["spec"]["importCredentialsSecret"]["name"] for u in of_kind(documents, "User").values()}
    for name, deployment in of_kind(documents, "Deployment").items():
        secret = _env(_main(deployment))["AMQP_URI"]["valueFrom"]["secretKeyRef"]["name"]
        assert secret in credentials and name in secret, name
    [trigger] = of_kind(documents, "TriggerAuthentication").values()
    host = {t["parameter"]: t["name"] for t in trigger["spec"]["secretTargetRef"]}["host"]
    assert host == "weintervene-broker-analytics"


def test_postgresql_is_three_instances_with_one_database_and_role_per_service():
    documents = built(PRODUCTION)
    [(cluster_name, cluster)] = of_kind(documents, "Cluster").items()
    assert cluster["spec"]["instances"] == 3
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    databases = {d["spec"]["name"]: d["spec"] for d in of_kind(documents, "Database").values()}
    deployments = of_kind(documents, "Deployment")
    assert set(databases) == {f"wi_{s}" for s in SERVICES}
    for service in SERVICES:
        database = databases[f"wi_{service}"]
        assert database["owner"] == f"wi_{service}" and database["cluster"]["name"] == cluster_name
        role = roles[f"wi_{service}"]
        assert role["login"] and not role.get("superuser") and not role.get("createdb")
        # The password the role is given is the one the service (and its migration) logs in with.
        for container in deployments[service]["spec"]["template"]["spec"]["initContainers"] + [_main(deployments[service])]:
            secret = _env(container)["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
            assert secret == role["passwordSecret"]["name"], (service, container["name"])


def _pooler(documents):
    [pooler] = of_kind(documents, "Pooler").values()
    return pooler


def test_the_services_reach_postgresql_through_a_transaction_mode_pooler():
    documents = built(PRODUCTION)
    pooler = _pooler(documents)
    assert pooler["spec"]["pgbouncer"]["poolMode"] == "transaction"
    assert pooler["spec"]["type"] == "rw"
    assert pooler["spec"]["cluster"]["name"] in of_kind(documents, "Cluster")
    config = of_kind(documents, "ConfigMap")["weintervene-config"]["data"]
    assert config["DATABASE_HOST"] == pooler["metadata"]["name"]


def _max_replicas(documents, name, deployment) -> int:
    scaled = [s for s in of_kind(documents, "ScaledObject").values() if s["spec"]["scaleTargetRef"]["name"] == name]
    return scaled[0]["spec"]["maxReplicaCount"] if scaled else deployment["spec"].get("replicas", 1)


def test_the_services_pools_fit_the_pooler_and_the_pooler_fits_postgresql():
    documents = built(PRODUCTION)
    engine = make_engine("postgresql+psycopg2://wi_x:secret@db.example:5432/wi_x")
    try:
        # Read, not set: what one process may hold open (pool_size + max_overflow).
        per_process = engine.pool.size() + engine.pool._max_overflow
    finally:
        engine.dispose()
    deployments = of_kind(documents, "Deployment")
    # Every replica at its most (analytics: KEDA's maximum), plus each one's migration at start.
    # Identity's read-only entrypoints have their own autocommit pool of the same size (weintervene.db).
    pools = {s: 2 if s == "identity" else 1 for s in SERVICES}
    clients = sum(_max_replicas(documents, s, deployments[s]) * (pools[s] * per_process + 1) for s in SERVICES)
    pgbouncer = _pooler(documents)["spec"]["pgbouncer"]["parameters"]
    # Any one pooler instance can take every client (the Service does not balance them evenly).
    assert clients <= int(pgbouncer["max_client_conn"]), clients
    [cluster] = of_kind(documents, "Cluster").values()
    server = _pooler(documents)["spec"]["instances"] * len(SERVICES) * int(pgbouncer["default_pool_size"])
    reserved = 3 + 2 * cluster["spec"]["instances"] + 10  # superuser, replication, the operator
    assert server + reserved <= int(cluster["spec"]["postgresql"]["parameters"]["max_connections"]), server


def test_tls_to_postgresql_is_verify_full_against_the_ca_from_a_secret():
    documents = built(PRODUCTION)
    config = of_kind(documents, "ConfigMap")["weintervene-config"]["data"]
    assert config["PGSSLMODE"] == "verify-full"
    pooler_certificate = next(c for c in of_kind(documents, "Certificate").values()
                              if c["spec"]["secretName"] == _pooler(documents)["spec"]["pgbouncer"]["clientTLSSecret"]["name"])
    assert config["DATABASE_HOST"] in pooler_certificate["spec"]["dnsNames"]
    deployments = of_kind(documents, "Deployment")
    for service in SERVICES:
        spec = deployments[service]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["initContainers"] + spec["containers"]:
            [mount] = [m for m in container["volumeMounts"] if config["PGSSLROOTCERT"].startswith(m["mountPath"] + "/")]
            secret = volumes[mount["name"]]["secret"]
            # The CA certificate only: never the CA's private key in a service's pod.
            assert [i["key"] for i in secret["items"]] == ["ca.crt"]
            issuer = of_kind(documents, "Issuer")["weintervene-internal-ca"]
            assert secret["secretName"] == issuer["spec"]["ca"]["secretName"], (service, container["name"])


@pytest.mark.parametrize("kind, field", [("RabbitmqCluster", "replicas"), ("Cluster", "instances"), ("Pooler", "instances")])
def test_dev_runs_one_of_each_engine(kind, field):
    [engine] = of_kind(built("dev"), kind).values()
    assert engine["spec"][field] == 1
