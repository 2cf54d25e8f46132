"""A running WeIntervene for the referrals integration tests and benchmark.

Real RabbitMQ (a vhost of its own), real PostgreSQL databases (or SQLite when
none is reachable), and the real identity, directory, referrals and gateway
services. Tenants, users and the roster are made through identity's RPCs (as
an operator and a school admin would); the directory services are created
through the gateway's ``POST /api/v1/directory/services`` by the people who
own them: an operator for the global ones, a school admin for a school's own,
a program admin for a program's.

Analytics and retention do not run here on purpose: their durable queues (declared
from ``contracts.SUBSCRIPTIONS``) collect what referrals publishes, so a test
can count exactly what analytics would receive. The benchmark runs them as well
(``extra_services``, in their own processes), as a deployment would.
"""
from __future__ import annotations

import base64
import dataclasses
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests
from kombu import Connection, Exchange, Queue
from nameko import config as nameko_config
from nameko.runners import ServiceRunner

from gateway.service import GatewayService
from services.directory.service import DirectoryService
from services.identity.service import IdentityService
from services.referrals.service import ReferralsService
from tests.support.infra import PostgresDatabases, Vhost, free_port, postgres_available
from tests.support.signing import ClusterRpcClient  # signs the contexts it passes, as the gateway does
from weintervene.config import SERVICES, Settings
from weintervene.contracts import SHARE_RECORDED, queue_name
from weintervene.db import make_engine
from weintervene.messaging import declare_topology

PASSWORD = "correct horse battery staple 42"
SERVICES_RUN = ("identity", "directory", "referrals")
COMPONENTS = SERVICES_RUN + ("gateway",)
ANALYTICS_QUEUE = queue_name("referrals", SHARE_RECORDED, "analytics", "on_share_recorded")


@dataclasses.dataclass
class World:
    """Tenants, users and a roster made for one test module."""

    district: str
    school: str
    other_school: str
    program: str
    emails: dict  # role name -> email
    users: dict  # role name -> user id
    student: str
    adult_student: str
    unserved_student: str
    spare_student: str
    mother: str
    father: str
    unauthorised_contact: str
    contacts: dict  # contact id -> identity's contact dict (name, email, mobile, language)
    services: dict  # name -> service id
    service_docs: dict  # name -> directory's get_service answer at creation
    term: str


class ReferralsSystem:
    def __init__(self, tmp_path, smtp_port: int, sms_url: str, use_postgres: bool | None = None,
                 separate_processes: bool = False, extra_services: tuple = (), **settings_overrides):
        self.vhost = Vhost()
        self.databases = None
        template = ""
        if use_postgres is None:
            use_postgres = postgres_available()
        if use_postgres:
            self.databases = PostgresDatabases(SERVICES)
            template = self.databases.template
        port = free_port()
        self.settings = Settings(
            amqp_uri=self.vhost.uri, data_dir=tmp_path, database_url_template=template,
            # public_base_url left to its default: the address the gateway listens on.
            gateway_address=f"127.0.0.1:{port}",
            secret_key="test-secret", sms_token="test-sms-token", dev_mode=True, smtp_port=smtp_port, sms_base_url=sms_url, rpc_timeout_seconds=20,
            delivery_backoff_seconds=0.2, **settings_overrides,
        )
        self.previous_config = dict(nameko_config)
        nameko_config.setup(self.settings.nameko_config())
        declare_topology(self.settings.amqp_uri)
        self.runner = None
        self.processes: dict[str, subprocess.Popen] = {}
        if extra_services and not separate_processes:
            raise ValueError("extra_services run only in processes of their own")
        if separate_processes:
            # As deployed: ``weintervene run --service NAME``, one process each, so
            # the services use every core (the benchmark's default).
            for name in COMPONENTS + tuple(extra_services):
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "weintervene.cli", "run", "--service", name],
                    env={**os.environ, **settings_env(self.settings)}, stdout=subprocess.DEVNULL,
                    stderr=open(Path(tmp_path) / f"{name}.log", "wb"),
                )
            try:
                self._wait_until_up()
            except BaseException:
                self.stop()  # no process, vhost or database left behind
                raise
        else:
            self.runner = ServiceRunner()
            for cls in (IdentityService, DirectoryService, ReferralsService, GatewayService):
                self.runner.add_service(cls)
            self.runner.start()

    def _wait_until_up(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            dead = [n for n, p in self.processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{dead} exited at start; see their logs in {self.settings.data_dir}")
            try:
                with ClusterRpcClient(uri=self.settings.amqp_uri, timeout=2) as rpc:
                    for name in SERVICES_RUN + tuple(n for n in self.processes if n not in COMPONENTS):
                        getattr(rpc, name).health()
                requests.get(self.url("/healthz"), timeout=2)  # any answer: the gateway listens
                return
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    # -- reaching it ------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.settings.public_base_url + path

    def login(self, email: str, password: str = PASSWORD) -> requests.Session:
        r = requests.post(self.url("/api/v1/sessions"), json={"email": email, "password": password}, timeout=30)
        assert r.status_code == 201, r.text
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {r.json()['token']}"
        return session

    def rpc(self):
        return ClusterRpcClient(uri=self.settings.amqp_uri, timeout=30)

    def container(self, name: str):
        return next(c for c in self.runner.containers if c.service_name == name)

    def referrals_engine(self):
        if self.runner is None:
            if not hasattr(self, "_engine"):
                self._engine = make_engine(self.settings.database_url("referrals"))
            return self._engine
        return next(e for e in self.container("referrals").dependencies if getattr(e, "service", None) == "referrals").engine

    def drain(self, queue: str) -> list[dict]:
        """Take every message waiting in a durable queue (acknowledged: consumed)."""
        out = []
        with Connection(self.settings.amqp_uri) as conn:
            channel = conn.channel()
            q = Queue(queue, durable=True)(channel)
            while True:
                message = q.get(no_ack=True)
                if message is None:
                    break
                out.append(message.payload)
        return out

    def tap(self, source: str = "referrals") -> str:
        """A queue bound to every routing key of ``source``'s events exchange; returns its name."""
        name = f"tap-{source}-{uuid.uuid4().hex[:8]}"
        with Connection(self.settings.amqp_uri) as conn:
            Queue(name, exchange=Exchange(f"{source}.events", type="topic", durable=True), routing_key="#",
                  durable=True, auto_delete=False)(conn.channel()).declare()
        return name

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
            self.runner.kill()
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if getattr(self, "_engine", None) is not None:
            self._engine.dispose()
        if self.databases is not None:
            self.databases.drop()
        self.vhost.delete()
        nameko_config.setup(self.previous_config)

    # -- data -------------------------------------------------------------------------
    def make_world(self, tag: str | None = None) -> World:
        tag = tag or uuid.uuid4().hex[:6]
        with self.rpc() as rpc:
            operator = rpc.identity.bootstrap_user(
                {"email": f"ops-{tag}@platform.example", "display_name": "Ops", "role": "operator",
                 "tenant_id": None}, PASSWORD)
            op_auth = {"user_id": operator["id"], "tenant_id": operator["tenant_id"], "role": "operator"}
            district = rpc.identity.create_tenant(op_auth, {"kind": "district", "name": f"Springfield USD {tag}"})
            school = rpc.identity.create_tenant(op_auth, {"kind": "school", "name": f"Lincoln Middle {tag}",
                                                         "parent_id": district["id"]})
            other = rpc.identity.create_tenant(op_auth, {"kind": "school", "name": f"Jefferson High {tag}",
                                                        "parent_id": district["id"]})
            program = rpc.identity.create_tenant(op_auth, {"kind": "program", "name": f"Bright Futures {tag}"})
            people = {
                "teacher": (school, "teacher"), "teacher2": (school, "teacher"), "admin": (school, "school_admin"),
                "other_admin": (other, "school_admin"), "other_teacher": (other, "teacher"),
                "district_admin": (district, "district_admin"), "program_staff": (program, "program_staff"),
                "program_admin": (program, "program_admin"),
                "auditor": (None, "auditor"),
            }
            emails, users = {"operator": f"ops-{tag}@platform.example"}, {"operator": operator["id"]}
            for key, (tenant, role) in people.items():
                email = f"{key}-{tag}@example.org"
                tenant_id = tenant["id"] if tenant else operator["tenant_id"]
                # The trusted bootstrap (the CLI's path): an operator creates no tenant staff.
                user = rpc.identity.bootstrap_user({"email": email, "display_name": key.title(), "role": role,
                                                    "tenant_id": tenant_id}, PASSWORD)
                emails[key], users[key] = email, user["id"]
            # The roster, imported by the school admin as journey 3 does.
            teacher = emails["teacher"]
            rows = [
                "student_key,first_name,last_name,grade,date_of_birth,student_email,student_mobile,"
                "contact_name,contact_relationship,contact_email,contact_mobile,contact_language,"
                "contact_authorised,staff_email",
                f"S1,Diego,Diaz,7,2013-03-01,,,Rosa Diaz,mother,rosa-{tag}@family.example,"
                f"{_mobile()},es,yes,{teacher}",
                f"S1,Diego,Diaz,7,2013-03-01,,,Luis Diaz,father,luis-{tag}@family.example,"
                f"{_mobile()},en,yes,{teacher}",
                f"S1,Diego,Diaz,7,2013-03-01,,,Bob Diaz,uncle,bob-{tag}@family.example,{_mobile()},en,no,{teacher}",
                f"S2,Sam,Lee,12,2006-01-15,sam-{tag}@family.example,{_mobile()},,,,,,,{teacher}",
                "S3,Maya,Ng,6,2014-05-01,,,,,,,,,",
                f"S4,Ana,Ruiz,8,2012-09-09,,,Carla Ruiz,mother,carla-{tag}@family.example,{_mobile()},es,yes,{teacher}",
            ]
            admin_auth = {"user_id": users["admin"], "tenant_id": school["id"], "role": "school_admin",
                          "district_id": district["id"]}
            result = rpc.identity.import_roster(admin_auth, base64.b64encode("\n".join(rows).encode()).decode())
            assert not result["errors"], result["errors"]
            listed = rpc.identity.list_students(admin_auth, {"per_page": 100})["items"]
            by_key = {s["roster_key"]: s["id"] for s in listed}
            diego = rpc.identity.get_student(admin_auth, by_key["S1"])
            sam = rpc.identity.get_student(admin_auth, by_key["S2"])
            # A real Open Eligibility term (directory loads the taxonomy at start).
            term = rpc.directory.categories()[0]["children"][0]["id"]
        contacts = {c["id"]: c for c in diego["contacts"] + sam["contacts"]}
        by_relation = {c["relationship"]: c["id"] for c in diego["contacts"]}
        # Each service is created by whoever owns it, through the gateway as the web app does.
        owners = {"operator": None, "other_admin": None, "program_admin": None}
        for key in owners:
            owners[key] = self.login(emails[key])
        services, docs = {}, {}
        for name, title, owner, extra in (
            ("counseling", "Casa Azul Counseling", "operator", {}),
            ("pantry1", "Northside Food Pantry", "operator", {}),
            ("pantry2", "Eastside Food Pantry", "operator", {}),
            ("pantry3", "Westside Food Pantry", "operator", {}),
            # Visible only inside the program until it publishes it (journey 7 does, with PUBLISH_TO_SCHOOLS).
            ("mentoring", "Bright Futures Mentoring", "program_admin", {}),
            ("other_school_club", "Jefferson Club", "other_admin", {}),
        ):
            r = owners[owner].post(self.url("/api/v1/directory/services"),
                                   json={**service_input(title, term), **extra}, timeout=30)
            assert r.status_code == 201, r.text
            services[name], docs[name] = r.json()["id"], r.json()
        return World(
            district=district["id"], school=school["id"], other_school=other["id"], program=program["id"],
            emails=emails, users=users, student=by_key["S1"], adult_student=by_key["S2"],
            unserved_student=by_key["S3"], spare_student=by_key["S4"], mother=by_relation["mother"],
            father=by_relation["father"], unauthorised_contact=by_relation["uncle"], contacts=contacts,
            services=services, service_docs=docs, term=term,
        )


# How a youth program offers one of its services to every school on the platform
# (journey 7): directory's ``published_to`` audience "schools".
PUBLISH_TO_SCHOOLS = {"published_to": "schools"}


def service_input(name: str, term: str, address: str = "12 Main St") -> dict:
    """The body of ``POST /api/v1/directory/services`` for one of the test's services."""
    return {
        "name": name, "description": f"{name} helps families.", "organization_name": name,
        "location": {"name": name, "address": {"address_1": address, "city": "Springfield",
                                               "state_province": "IL", "postal_code": "62701"},
                     "latitude": 39.78, "longitude": -89.65},
        "phones": ["217-555-0100"],
        "schedules": [{"days": ["MO", "TU", "WE", "TH", "FR"], "opens_at": "16:00", "closes_at": "20:00"}],
        "eligibility_description": "Families with children 5-18",
        "minimum_age": 5, "maximum_age": 18, "languages": ["en", "es"], "cost": "free",
        "taxonomy_term_ids": [term],
    }


def settings_env(settings: Settings) -> dict:
    """``WEINTERVENE_*`` variables that make ``Settings.from_env()`` equal ``settings``."""
    env = {}
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if field.name == "database_urls":
            env.update({f"WEINTERVENE_{k.upper()}_DATABASE_URL": v for k, v in value.items()})
        elif value is not None:
            env["WEINTERVENE_" + field.name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _mobile() -> str:
    return "+1555" + str(uuid.uuid4().int)[:7]
