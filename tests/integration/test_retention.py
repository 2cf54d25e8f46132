"""Retention through the gateway and the broker: dispatch, confirmations from every data
service, a service down during dispatch, broker connections cut mid-deletion, repeats,
the audit chain (and a tampered entry), the auditor's view, exports.

Which container handles ``deletion_requested`` for a data service: the real service
once it mixes in DeletionParticipant (after the teams' branches are merged), else a
small stand-in participant defined here (it stands in for that bounded context). The
requests are retention-policy runs (scope ``policy``), which need nothing from other
services but their deletion handler; the student opt-out end to end is in
``test_retention_journeys.py``; a real broker restart (a private RabbitMQ node) in
``test_retention_broker_restart.py``.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
import zipfile

import pytest
import requests
import kombu.pools
from kombu import Connection
from nameko.containers import ServiceContainer
from sqlalchemy import Integer, String, create_engine, delete, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from tests.support.infra import ROOT, random_suffix
from tests.support.people import bootstrap, call
from weintervene.contracts import DATA_SERVICES, DELETION_REQUESTED, SUBSCRIPTIONS, queue_name
from weintervene.db import Database, make_engine
from weintervene.deletion import DeletionParticipant, make_deletion_receipt_model
from weintervene.messaging import OutboxRelay, ReliablePublisher, event_exchange, make_outbox_model
from weintervene.runner import service_class

pytestmark = pytest.mark.integration



# -- a stand-in for a data service that has no deletion handler (yet) ---------------

def has_real_participant(name: str) -> bool:
    return issubclass(service_class(name), DeletionParticipant)


def stand_in_participant(service_name: str, folder) -> type:
    """A service named like ``service_name`` that only takes part in deletions.

    It holds ``record`` rows per tenant in its own SQLite file and deletes a
    tenant's rows on request, confirming through its own outbox, exactly as a
    real participant does.
    """

    class StandInBase(DeclarativeBase):
        pass

    class Record(StandInBase):
        __tablename__ = "record"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        tenant_id: Mapped[str] = mapped_column(String(36), index=True)

    outbox = make_outbox_model(StandInBase)
    receipts = make_deletion_receipt_model(StandInBase)

    class StandInDatabase(Database):
        def setup(self):
            self.engine = make_engine(f"sqlite:///{folder}/stand_in_{service_name}.db")
            StandInBase.metadata.create_all(self.engine)
            self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    class StandIn(DeletionParticipant, OutboxRelay):
        name = service_name
        db = StandInDatabase(service_name, StandInBase)
        events = ReliablePublisher()
        outbox_model = outbox
        receipt_model = receipts

        def delete_for(self, request):
            n = self.db.execute(delete(Record).where(Record.tenant_id.in_(request["tenant_ids"]))).rowcount
            return {"records": n}

    StandIn.__name__ = f"StandIn_{service_name}"
    return StandIn


class Participants:
    """The container handling deletions for each data service; stop and restart one."""

    def __init__(self, system, folder):
        self.system = system
        self.folder = folder
        self.stand_ins: dict[str, ServiceContainer] = {}
        for name in DATA_SERVICES:
            if not has_real_participant(name):
                container = ServiceContainer(stand_in_participant(name, folder))
                container.start()
                self.stand_ins[name] = container

    def container(self, name) -> ServiceContainer:
        return self.stand_ins.get(name) or self.system.runner.service_map[name]

    def stop(self, name):
        self.container(name).stop()

    def start(self, name):
        container = ServiceContainer(self.container(name).service_cls)
        container.start()
        if name in self.stand_ins:
            self.stand_ins[name] = container
        else:
            self.system.runner.service_map[name] = container

    def seed(self, name, tenant_id, n):
        """Give a stand-in ``n`` rows of the tenant (real services hold their own data)."""
        if name not in self.stand_ins:
            return 0
        engine = create_engine(f"sqlite:///{self.folder}/stand_in_{name}.db")
        with engine.begin() as conn:
            for _ in range(n):
                conn.execute(text("INSERT INTO record (tenant_id) VALUES (:t)"), {"t": tenant_id})
        engine.dispose()
        return n

    def close(self):
        for container in self.stand_ins.values():
            container.stop()


@pytest.fixture(scope="module")
def participants(system, tmp_path_factory):
    p = Participants(system, tmp_path_factory.mktemp("stand_ins"))
    yield p
    p.close()


# -- people --------------------------------------------------------------------------

def new_school(system, operator):
    r = operator.post(system.url("/api/v1/tenants"), json={"kind": "school", "name": f"School {random_suffix()}"})
    assert r.status_code == 201, r.text
    tenant_id = r.json()["id"]
    return tenant_id, bootstrap(system, "school_admin", tenant_id)


@pytest.fixture(scope="module")
def school(system, operator):
    return new_school(system, operator)


def policy_deletion(system, admin) -> str:
    """A retention policy of ``admin``'s tenant, run now: one scope=policy deletion request."""
    r = admin.post(system.url("/api/v1/retention-policies"), json={"record_kind": "login_records", "max_age_days": 365})
    assert r.status_code == 201, r.text
    ids = call(system, "retention", "run_due_policies")
    mine = [i for i in ids if rpc_get(system, i)["policy_id"] == r.json()["id"]]
    if not mine:
        # Retention's own minute timer may have run the new policy between the POST and this
        # call (it is due at once): then its request is already there, made by the timer.
        engine = create_engine(system.settings.database_url("retention"))
        try:
            with engine.connect() as conn:
                mine = list(conn.execute(text("SELECT id FROM deletion_request WHERE policy_id = :p"),
                                         {"p": r.json()["id"]}).scalars())
        finally:
            engine.dispose()
    assert len(mine) == 1, ids
    return mine[0]


def rpc_get(system, request_id):
    return call(system, "retention", "get_deletion_request",
                {"user_id": "t", "tenant_id": "t", "role": "auditor"}, request_id)


def wait_for(system, auditor, request_id, predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    record = None
    while time.monotonic() < deadline:
        try:
            r = auditor.get(system.url(f"/api/v1/deletion-requests/{request_id}"), timeout=10)
            if r.status_code == 200:
                record = r.json()
                if predicate(record):
                    return record
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"condition not reached; last record: {record}")


def completed(record):
    return record["status"] == "completed"


# -- tests -----------------------------------------------------------------------------

def test_every_deletion_queue_is_declared_before_any_consumer(system):
    names = {q["name"] for q in system.vhost.queues()}
    for (source, event_type), consumers in SUBSCRIPTIONS.items():
        if source == "retention" or event_type == "deletion_completed":
            for consumer, method in consumers:
                assert queue_name(source, event_type, consumer, method) in names


def test_a_policy_deletion_completes_when_every_service_confirmed(system, participants, school, auditor):
    tenant_id, admin = school
    seeded = participants.seed("analytics", tenant_id, 3)
    request_id = policy_deletion(system, admin)
    record = wait_for(system, auditor, request_id, completed)
    assert sorted(c["service"] for c in record["confirmations"]) == sorted(DATA_SERVICES)
    assert record["missing_services"] == [] and record["attempt"] == 1
    if seeded:
        [analytics] = [c for c in record["confirmations"] if c["service"] == "analytics"]
        assert analytics["counts"] == {"records": 3}
    assert record["tenant_id"] == tenant_id and record["scope"] == "policy" and record["record_kind"] == "login_records"
    # The auditor's view: filters, and a CSV download.
    r = auditor.get(system.url(f"/api/v1/deletion-requests?tenant_id={tenant_id}&scope=policy&status=completed"))
    assert r.status_code == 200 and [i["id"] for i in r.json()["items"]] == [request_id]
    r = auditor.get(system.url(f"/api/v1/deletion-requests?tenant_id={tenant_id}&format=csv"))
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert request_id in r.text and "analytics" in r.text
    r = auditor.get(system.url("/api/v1/audit/verify"))
    assert r.status_code == 200 and r.json()["ok"] is True, r.json()


def test_a_service_down_at_dispatch_finishes_after_restart_and_only_then_completes(
    system, participants, operator, auditor,
):
    _tenant, admin = new_school(system, operator)
    participants.stop("analytics")
    try:
        request_id = policy_deletion(system, admin)
        others = sorted(set(DATA_SERVICES) - {"analytics"})
        wait_for(system, auditor, request_id, lambda r: sorted(c["service"] for c in r["confirmations"]) == others)
        time.sleep(1.5)
        record = wait_for(system, auditor, request_id, lambda r: True)
        assert record["status"] == "dispatched" and record["missing_services"] == ["analytics"]
    finally:
        participants.start("analytics")
    record = wait_for(system, auditor, request_id, completed)
    assert "analytics" in {c["service"] for c in record["confirmations"]}


def _close_vhost_connections(system):
    api = system.vhost.api
    r = requests.get(f"{api}/api/vhosts/{system.vhost.name}/connections", timeout=10)
    r.raise_for_status()
    for connection in r.json():
        requests.delete(f"{api}/api/connections/{requests.utils.quote(connection['name'], safe='')}", timeout=10)
    return len(r.json())


def test_broker_connections_cut_mid_deletion_still_complete(system, participants, operator, auditor):
    _tenant, admin = new_school(system, operator)
    request_id = policy_deletion(system, admin)
    assert _close_vhost_connections(system) > 0
    try:
        record = wait_for(system, auditor, request_id, completed, timeout=60)
        assert sorted(c["service"] for c in record["confirmations"]) == sorted(DATA_SERVICES)
    finally:
        # Cleanup for the tests that follow in this process: drop the pooled
        # connections the cut left dead (the services above recovered on their own).
        kombu.pools.reset()


def test_repeating_a_deletion_is_harmless(system, participants, operator, auditor):
    _tenant, admin = new_school(system, operator)
    request_id = policy_deletion(system, admin)
    first = wait_for(system, auditor, request_id, completed)
    message = {"request_id": request_id, "scope": "policy", "tenant_id": first["tenant_id"],
               "subject_id": first["tenant_id"], "tenant_ids": first["tenant_ids"], "attempt": 1}
    with Connection(system.settings.amqp_uri) as conn:
        producer = conn.Producer()
        for _ in range(2):  # a redelivery and a duplicate
            producer.publish(message, exchange=event_exchange("retention"), routing_key=DELETION_REQUESTED,
                             serializer="json", delivery_mode=2, declare=[event_exchange("retention")])
    _wait_for_empty_deletion_queues(system)
    again = wait_for(system, auditor, request_id, lambda r: True)
    assert again["confirmations"] == first["confirmations"] and again["completed_at"] == first["completed_at"]
    assert auditor.get(system.url("/api/v1/audit/verify")).json()["ok"] is True


def _wait_for_empty_deletion_queues(system, timeout=20.0):
    """The management API's counts lag: wait until every deletion queue has been drained twice in a row."""
    names = {queue_name(s, e, c, m) for (s, e), cs in SUBSCRIPTIONS.items() if "deletion" in e for c, m in cs}
    deadline = time.monotonic() + timeout
    quiet = 0
    time.sleep(1.0)
    while time.monotonic() < deadline and quiet < 2:
        busy = [q for q in system.vhost.queues() if q["name"] in names
                and (q.get("messages", 0) or q.get("messages_unacknowledged", 0))]
        quiet = quiet + 1 if not busy else 0
        time.sleep(0.5)
    time.sleep(1.0)


def _retention_url(system):
    return system.settings.database_url("retention")


def test_a_tampered_audit_entry_is_detected_by_the_api_and_the_cli(system, participants, school, auditor):
    _tenant, admin = school
    policy_deletion(system, admin)
    engine = create_engine(_retention_url(system))
    postgres = engine.dialect.name == "postgresql"
    try:
        with engine.begin() as conn:
            seq, data = conn.execute(text("SELECT seq, data FROM audit_entry ORDER BY seq DESC LIMIT 1")).one()
            original = data if isinstance(data, str) else json.dumps(data)
            if postgres:
                conn.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_no_change"))
            else:
                conn.execute(text("DROP TRIGGER audit_entry_no_update"))
            tampered = json.loads(original)
            tampered["tampered"] = True
            conn.execute(text("UPDATE audit_entry SET data = :d WHERE seq = :s"), {"d": json.dumps(tampered), "s": seq})
        report = auditor.get(system.url("/api/v1/audit/verify")).json()
        assert report["ok"] is False and report["first_broken"]["seq"] == seq, report
        cli = subprocess.run(
            [sys.executable, "-m", "weintervene.cli", "audit", "verify"], cwd=ROOT, capture_output=True, text=True,
            env={**os.environ, "WEINTERVENE_RETENTION_DATABASE_URL": _retention_url(system)}, timeout=60,
        )
        assert cli.returncode == 1 and f"BROKEN at entry {seq}" in cli.stderr, cli.stderr
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE audit_entry SET data = :d WHERE seq = :s"), {"d": original, "s": seq})
            if postgres:
                conn.execute(text("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_no_change"))
            else:
                conn.execute(text("CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry "
                                  "BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only'); END"))
        engine.dispose()
    assert auditor.get(system.url("/api/v1/audit/verify")).json()["ok"] is True
    cli = subprocess.run(
        [sys.executable, "-m", "weintervene.cli", "audit", "verify"], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "WEINTERVENE_RETENTION_DATABASE_URL": _retention_url(system)}, timeout=60,
    )
    assert cli.returncode == 0, cli.stderr


def test_the_audit_table_refuses_edits(system, school, participants):
    _tenant, admin = school
    policy_deletion(system, admin)
    engine = create_engine(_retention_url(system))
    try:
        with pytest.raises(Exception, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM audit_entry WHERE seq = 1"))
    finally:
        engine.dispose()


def test_a_data_owner_downloads_a_full_export_without_secrets(system, operator):
    tenant_id, admin = new_school(system, operator)
    r = admin.post(system.url("/api/v1/exports"), json={"tenant_id": tenant_id})
    assert r.status_code == 201, r.text
    export_id = r.json()["id"]
    r = admin.get(system.url(f"/api/v1/exports/{export_id}"))
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(archive.namelist())
    assert {"manifest.json", "identity/user_account.json", "identity/user_account.csv"} <= names
    users = json.loads(archive.read("identity/user_account.json"))
    assert [u["email"] for u in users] == [admin.user["email"]]
    assert all(u["tenant_id"] == tenant_id for u in users)
    everything = b"".join(archive.read(n) for n in names)
    assert b"password" not in everything and b"token_hash" not in everything
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["tenant_id"] == tenant_id and manifest["tables"]["identity"]["user_account"] == 1
    # Not someone else's, not the operator's.
    _other_tenant, other_admin = new_school(system, operator)
    assert other_admin.get(system.url(f"/api/v1/exports/{export_id}")).status_code == 404
    assert operator.post(system.url("/api/v1/exports"), json={"tenant_id": tenant_id}).status_code == 403
    assert other_admin.post(system.url("/api/v1/exports"), json={"tenant_id": tenant_id}).status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"scope": "student", "subject_id": str(uuid.uuid4()), "reason": "parent_opt_out"}, "verification"),
    ({"scope": "student", "subject_id": str(uuid.uuid4()), "reason": "parent_opt_out", "note": "call 555-201-3344",
      "verification": {"method": "phone_callback", "verified_by": str(uuid.uuid4())}}, "note"),
    ({"scope": "everything", "subject_id": str(uuid.uuid4()), "reason": "other"}, "scope"),
    ({"scope": "tenant", "subject_id": "not-a-uuid", "reason": "contract_ended"}, "subject_id"),
    ({"scope": "tenant", "subject_id": str(uuid.uuid4()), "reason": "contract_ended", "name": "x"}, "name"),
])
def test_bad_deletion_requests_are_400_with_the_field(system, school, body, field):
    _tenant, admin = school
    r = admin.post(system.url("/api/v1/deletion-requests"), json=body)
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]["details"]


def test_who_may_read_and_write_the_record(system, school, auditor):
    tenant_id, admin = school
    teacher = bootstrap(system, "teacher", tenant_id)
    assert teacher.get(system.url("/api/v1/deletion-requests")).status_code == 403
    assert teacher.post(system.url("/api/v1/deletion-requests"), json={
        "scope": "user", "subject_id": str(uuid.uuid4()), "reason": "account_closed"}).status_code == 403
    assert auditor.post(system.url("/api/v1/deletion-requests"), json={
        "scope": "user", "subject_id": str(uuid.uuid4()), "reason": "account_closed"}).status_code == 403
    assert admin.get(system.url("/api/v1/audit/verify")).status_code == 403
    # An admin sees only their tenant's requests; the auditor sees every tenant's.
    mine = admin.get(system.url("/api/v1/deletion-requests?per_page=500")).json()["items"]
    assert all(r["tenant_id"] == tenant_id for r in mine)
    r = auditor.get(system.url("/api/v1/deletion-requests?status=open&overdue=true&from=2026-01-01&to=2099-01-01"))
    assert r.status_code == 200 and r.json()["items"] == []
    assert auditor.get(system.url("/api/v1/deletion-requests?from=2026-02-01&to=2026-01-01")).status_code == 400


def test_the_table_scanner_finds_a_stored_value_and_not_an_absent_one(system, school):
    from tests.support.scanner import scan_for

    tenant_id, admin = school
    hits = scan_for(system.settings, admin.user["email"])
    assert ("identity", "user_account", "email", 1) in hits
    assert scan_for(system.settings, str(uuid.uuid4())) == []
    # A value inside a JSON payload is found too (retention's audit entries name the tenant).
    r = admin.post(system.url("/api/v1/retention-policies"), json={"record_kind": "delivery_logs", "max_age_days": 90})
    assert r.status_code == 201, r.text
    assert any(h[:3] == ("retention", "audit_entry", "data") for h in scan_for(system.settings, tenant_id))
