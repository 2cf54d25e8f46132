"""A real RabbitMQ restart in the middle of a parent's opt-out (issue #6: "a broker restart
mid-deletion").

The shared broker (127.0.0.1:5672) is never touched: this module starts a RabbitMQ node of
its own (:class:`tests.support.infra.PrivateRabbit`: own node name, ports, data folder and
cookie) and runs WeIntervene on it in four processes, as a deployment would: identity,
directory and the gateway in one, referrals, analytics and retention each in their own,
so one data service can be down while the broker restarts, and every other process has to
reconnect by itself (consumers, RPC replies, retention's confirmed dispatch, the outbox
relays). The restart is a graceful stop of the node and a start on the same port and data
folder, so only what RabbitMQ keeps on disk survives: durable queues and persistent
messages.

Two paths, each forced rather than left to timing:

* the copy survives: referrals is down, so its copy of ``deletion_requested`` waits in its
  durable queue across the restart; retention's re-send is 600 s away, so the request can
  only complete from that copy (``attempt`` stays 1);
* the copy is lost: the same, but the copy is purged right after the restart (standing in
  for a message the broker lost), and retention, re-sending after 4 s, must complete it
  (``attempt`` 2 or more).

After each: every service confirmed with the right counts, nothing about the student left
in any table of any service, the request completed only after the last confirmation, and
the audit chain verifies.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import time

import eventlet
import pytest
import requests
from sqlalchemy import create_engine, text

from tests.integration.test_retention import completed, wait_for
from tests.integration.test_retention_journeys import (
    TENANT_FENCES, import_students, make_directory_service, make_school, share,
)
from tests.support.infra import PostgresDatabases, PrivateRabbit, RunningSystem, ServiceProcess, free_port
from tests.support.people import bootstrap
from tests.support.scanner import scan_for
from weintervene.config import SERVICES, Settings
from weintervene.contracts import DATA_SERVICES, DELETION_REQUESTED, queue_name

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

REFERRALS_COPY = queue_name("retention", DELETION_REQUESTED, "referrals", "on_deletion_requested")
PROCESSES = {"front": ("identity", "directory", "gateway"), "referrals": ("referrals",),
             "analytics": ("analytics",), "retention": ("retention",)}


def settings_environment(settings: Settings) -> dict:
    """``settings`` as the environment ``weintervene run`` reads (Settings.from_env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEINTERVENE_") and k != "AMQP_URI"}
    env["AMQP_URI"] = settings.amqp_uri
    for name, value in vars(settings).items():
        if name in ("amqp_uri", "database_urls"):
            continue
        env[f"WEINTERVENE_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def wait_healthy(system, down=(), timeout=90.0) -> float:
    """Seconds until the gateway answers /healthz with every service reachable (but those ``down``)."""
    started = time.monotonic()
    last = None
    while time.monotonic() - started < timeout:
        try:
            r = requests.get(system.url("/healthz"), timeout=5)
            if r.status_code in (200, 503):
                report = r.json()["services"]
                if all(v.get("status") == "ok" for k, v in report.items() if k not in down):
                    return time.monotonic() - started
            last = r.text
        except requests.RequestException as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise AssertionError(f"the system did not become healthy in {timeout} s: {last}")


@pytest.fixture(scope="module")
def private_rabbit():
    rabbit = PrivateRabbit()
    yield rabbit
    rabbit.close()


@pytest.fixture(scope="module")
def restartable_system(private_rabbit, smtp_sink, sms_endpoint, test_database_kind, tmp_path_factory):
    folder = tmp_path_factory.mktemp("restartable_system")
    databases = PostgresDatabases(SERVICES) if test_database_kind == "postgres" else None
    port = free_port()
    settings = Settings(
        amqp_uri=private_rabbit.amqp_uri, data_dir=folder,
        database_url_template=databases.template if databases else "",
        gateway_address=f"127.0.0.1:{port}", public_base_url=f"http://127.0.0.1:{port}",
        secret_key="test-secret", sms_token="test-sms-token", dev_mode=True, smtp_port=smtp_sink.port, sms_base_url=sms_endpoint.base_url,
        rpc_timeout_seconds=20, gateway_request_timeout_seconds=15, deletion_resend_seconds=600,
    )
    env = settings_environment(settings)
    processes = {key: ServiceProcess(names, env, folder) for key, names in PROCESSES.items()}
    system = RunningSystem(base_url=settings.public_base_url, settings=settings, vhost=None, smtp=smtp_sink,
                           sms=sms_endpoint, runner=processes, databases=databases)
    try:
        for process in processes.values():
            process.start()
        print(f"\nprivate RabbitMQ started in {private_rabbit.timings[0][1]:.1f} s; "
              f"services healthy {wait_healthy(system):.1f} s after launch; their logs in {folder}")
        yield system
    finally:
        for process in processes.values():
            process.stop()
        if databases is not None:
            databases.drop()


@pytest.fixture(scope="module")
def people(restartable_system):
    return bootstrap(restartable_system, "operator"), bootstrap(restartable_system, "auditor")


def a_student_with_a_share(system, operator):
    """A school, its admin and teacher, two students, and one share for each."""
    tenant_id, admin, teacher = make_school(system, operator)
    subject, classmate = import_students(system, admin, teacher, 2)
    service_id = make_directory_service(system, operator)
    for student in (subject, classmate):
        r = share(system, teacher, student, service_id)
        assert r.status_code == 201, r.text
    return tenant_id, admin, teacher, subject, classmate, service_id


def opt_out(system, admin, teacher, student) -> str:
    r = admin.post(system.url("/api/v1/deletion-requests"), json={
        "scope": "student", "subject_id": student["id"], "reason": "parent_opt_out",
        "verification": {"method": "in_person_photo_id", "verified_by": teacher.user["id"]},
    })
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "dispatched", r.json()
    return r.json()["id"]


def confirmed(record) -> list[str]:
    return sorted(c["service"] for c in record["confirmations"])


def everyone_but_referrals_confirmed(system, auditor, request_id, waiting=("referrals",)):
    """Every data service but those ``waiting`` confirmed, and the request still open."""
    others = sorted(set(DATA_SERVICES) - set(waiting))
    record = wait_for(system, auditor, request_id, lambda r: confirmed(r) == others, timeout=30)
    assert record["status"] == "dispatched" and record["missing_services"] == sorted(waiting)


def no_container_died(system):
    """No service container of any process died (nameko logs it CRITICAL and the process lives on)."""
    for process in system.runner.values():
        for n in range(1, process.starts + 1):
            log = process.log_folder / f"{'+'.join(process.names)}-{n}.log"
            died = [line for line in log.read_text(errors="replace").splitlines() if "CRITICAL" in line]
            assert died == [], (log.name, died)
        assert process.running(), process.names


def unpublished_outbox_rows(system, service) -> int:
    engine = create_engine(system.settings.database_url(service))
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT count(*) FROM outbox_message WHERE published_at IS NULL"))
    finally:
        engine.dispose()


def check_deleted_everywhere(system, auditor, request_id, subject, classmate, admin):
    record = wait_for(system, auditor, request_id, lambda r: True)
    assert confirmed(record) == sorted(DATA_SERVICES)
    # Completed only once the last confirmation (referrals', after the restart) was recorded.
    last_confirmation = max(c["received_at"] for c in record["confirmations"])
    assert record["completed_at"] >= last_confirmation
    counts = {c["service"]: c["counts"] for c in record["confirmations"]}
    assert counts["referrals"]["shares"] == 1, counts
    assert counts["identity"]["students"] == 1 and counts["identity"]["family_contacts"] == 1, counts
    assert counts["analytics"] == {} and counts["directory"] == {}, counts  # they hold nothing about a student
    for value in (subject["id"], subject["first"], subject["last"], subject["email"], *subject["contact_ids"]):
        assert scan_for(system.settings, value) == [], value
    assert admin.get(system.url(f"/api/v1/students/{classmate['id']}")).status_code == 200
    r = auditor.get(system.url("/api/v1/audit/verify"))
    assert r.status_code == 200 and r.json()["ok"] is True, r.json()
    return record


def test_a_broker_restart_mid_opt_out_completes_from_the_copy_kept_in_the_durable_queue(
    restartable_system, private_rabbit, people,
):
    system, (operator, auditor) = restartable_system, people
    _school, admin, teacher, ana, ben, service_id = a_student_with_a_share(system, operator)
    system.runner["referrals"].stop()
    try:
        request_id = opt_out(system, admin, teacher, ana)
        everyone_but_referrals_confirmed(system, auditor, request_id)
        # One copy (two if both of retention's relays sent the row: at least once, harmless).
        waiting = private_rabbit.queue_depth(REFERRALS_COPY)
        assert waiting >= 1
        # A request in flight across the restart: the gateway waits for referrals (down). RPC
        # requests are transient (weintervene.rpc: run after its caller gave up, a retried share
        # would reach a family twice), so the restart drops it and the teacher gets a clear 504
        # within the gateway's request timeout, never a hang; the retry below is answered.
        in_flight = eventlet.spawn(teacher.get, system.url("/api/v1/referrals"), timeout=120)
        time.sleep(1.0)
        assert not in_flight.dead

        down = private_rabbit.stop()
        up = private_rabbit.start()
        assert private_rabbit.queue_depth(REFERRALS_COPY) == waiting  # durable queue, persistent messages
        healthy = wait_healthy(system, down=("referrals",))  # the gateway's RPC to every running service recovered
        print(f"\nbroker stop {down:.1f} s, start {up:.1f} s, services healthy again after {healthy:.1f} s")
        assert wait_for(system, auditor, request_id, lambda r: True)["status"] == "dispatched"
    finally:
        system.runner["referrals"].start()
    answer = in_flight.wait()
    assert answer.status_code == 504 and answer.json()["error"]["code"] == "service_timeout", answer.text
    answer = teacher.get(system.url("/api/v1/referrals"))
    assert answer.status_code == 200, answer.text
    record = wait_for(system, auditor, request_id, completed, timeout=90)
    assert record["attempt"] == 1, record  # the copy from before the restart; no re-send (600 s)
    check_deleted_everywhere(system, auditor, request_id, ana, ben, admin)
    # New data flows through the restarted broker: a share, its event out of the outbox.
    r = share(system, teacher, ben, service_id)
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 20
    while unpublished_outbox_rows(system, "referrals") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert unpublished_outbox_rows(system, "referrals") == 0
    # And a second opt-out, with every service up: each process that lived through the restart
    # consumes its copy and confirms through its outbox relay, at the first attempt.
    second = opt_out(system, admin, teacher, ben)
    record = wait_for(system, auditor, second, completed, timeout=30)
    assert confirmed(record) == sorted(DATA_SERVICES) and record["attempt"] == 1, record
    no_container_died(system)


def failed_then_published(system, service) -> int:
    """Outbox rows that needed more than one publish attempt and were published in the end."""
    engine = create_engine(system.settings.database_url(service))
    try:
        with engine.connect() as conn:
            return conn.scalar(text(
                "SELECT count(*) FROM outbox_message WHERE published_at IS NOT NULL AND attempts > 1"))
    finally:
        engine.dispose()



@contextlib.contextmanager
def rows_held(system, service, table, tenant_id):
    """Hold a write lock on ``table``'s rows of the tenant in ``service``'s database, as a
    concurrent transaction would (on PostgreSQL those rows; on SQLite the whole database):
    a deletion that reaches them waits, inside its own transaction, until this ends."""
    url = system.settings.database_url(service)
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            held = conn.execute(text(f"SELECT id FROM {table} WHERE tenant_id = :t FOR UPDATE"), {"t": tenant_id}).all()
            assert held, f"no {table} row of the tenant to hold"
            try:
                yield
            finally:
                conn.rollback()
    finally:
        engine.dispose()


def waiting_on_a_lock(system, service) -> int:
    """Statements of ``service`` waiting for a row lock (PostgreSQL); -1 where it cannot be told (SQLite)."""
    url = system.settings.database_url(service)
    if url.startswith("sqlite"):
        return -1
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                    "AND wait_event_type = 'Lock'"))
    finally:
        engine.dispose()


def test_a_broker_restart_while_a_service_is_inside_a_termination(restartable_system, private_rabbit, people):
    """The broker goes down while referrals is in the middle of deleting the school (its
    transaction waits on rows another transaction holds), and comes back before it ends: the
    deletion commits, its confirmation waits in the outbox until the broker is back, the
    unacknowledged copy comes again and deletes nothing more."""
    system, (operator, auditor) = restartable_system, people
    school_id, _admin, _teacher, ana, ben, _service = a_student_with_a_share(system, operator)
    with rows_held(system, "referrals", "share", school_id):
        r = operator.post(system.url("/api/v1/deletion-requests"),
                          json={"scope": "tenant", "subject_id": school_id, "reason": "contract_ended"})
        assert r.status_code == 202, r.text
        request_id = r.json()["id"]
        # Identity deleted too, but confirms only once its tables are rewritten, which waits
        # for every older transaction on the server (the rows held here, referrals' deletion):
        # weintervene.remnants.
        everyone_but_referrals_confirmed(system, auditor, request_id, waiting=("identity", "referrals"))
        deadline = time.monotonic() + 20
        while waiting_on_a_lock(system, "referrals") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert waiting_on_a_lock(system, "referrals") != 0  # referrals is inside its deletion
        private_rabbit.stop()
        private_rabbit.start()
    record = wait_for(system, auditor, request_id, completed, timeout=90)
    assert confirmed(record) == sorted(DATA_SERVICES)
    counts = {c["service"]: c["counts"] for c in record["confirmations"]}
    assert counts["referrals"]["shares"] == 2 and counts["identity"]["students"] == 2, counts
    runs = referrals_runs(system, request_id)
    print(f"\nreferrals carried out the termination {runs} time(s) "
          f"({'the unacknowledged copy came again after the restart' if runs > 1 else 'acknowledged before the restart'})")
    assert runs >= 1
    for student in (ana, ben):
        for value in (student["id"], student["first"], student["email"], *student["contact_ids"]):
            assert scan_for(system.settings, value, services=DATA_SERVICES) == [], value
    left = scan_for(system.settings, school_id, services=DATA_SERVICES)
    assert [hit for hit in left if hit[:2] not in TENANT_FENCES] == [], left
    r = auditor.get(system.url("/api/v1/audit/verify"))
    assert r.status_code == 200 and r.json()["ok"] is True, r.json()
    no_container_died(system)


def referrals_runs(system, request_id) -> int:
    """How many times referrals' processes logged carrying out ``request_id``."""
    process = system.runner["referrals"]
    logs = [process.log_folder / f"referrals-{n}.log" for n in range(1, process.starts + 1)]
    return sum(log.read_text(errors="replace").count(f"for request {request_id}") for log in logs)


def test_a_deletion_copy_lost_in_a_broker_restart_is_re_sent_until_confirmed(
    restartable_system, private_rabbit, people,
):
    system, (operator, auditor) = restartable_system, people
    # Re-send after 4 s instead of 600: only a re-send can complete what the broker lost.
    system.runner["retention"].stop()
    system.runner["retention"].start(WEINTERVENE_DELETION_RESEND_SECONDS=4)
    wait_healthy(system)
    _school, admin, teacher, carl, dana, _service = a_student_with_a_share(system, operator)
    system.runner["referrals"].stop()
    try:
        request_id = opt_out(system, admin, teacher, carl)
        everyone_but_referrals_confirmed(system, auditor, request_id)
        private_rabbit.stop()
        time.sleep(5)  # down for longer than the re-send interval: retention's publishes fail meanwhile
        private_rabbit.start()
        lost = private_rabbit.purge(REFERRALS_COPY)  # what the restart "lost" (a re-send may be among it)
        assert lost >= 1
        wait_healthy(system, down=("referrals",))
        # Retention's confirmed, mandatory publishing failed while the broker was down (a re-send
        # stayed in its outbox) and recovered by itself once it was back. (Checked before the
        # request completes: then retention deletes the request's outbox rows, which name the subject.)
        deadline = time.monotonic() + 30
        while not failed_then_published(system, "retention") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert failed_then_published(system, "retention") >= 1
    finally:
        system.runner["referrals"].start()
    record = wait_for(system, auditor, request_id, completed, timeout=90)
    assert record["attempt"] >= 2, record  # completed by a re-send published after the restart
    check_deleted_everywhere(system, auditor, request_id, carl, dana, admin)
    assert unpublished_outbox_rows(system, "retention") == 0
    no_container_died(system)
