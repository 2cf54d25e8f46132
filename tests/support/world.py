"""A small, fresh world of tenants, users and students for one test module.

Built through identity's RPCs (as the demo loader does), with unique emails so
modules never collide on the shared system:

- district D1 with schools S1 and S2; district D2 with school S3 (another
  tenant: the IDOR target); an independent school S4; a youth program P1;
- one user of every role, plus a second teacher in S1 and a teacher in S3;
- students: A (S1, served by teacher), B (S1, served by nobody), C (S2),
  X (S3, served by the S3 teacher), Q (P1 participant, served by program staff),
  and adult student M (S1, 19 years old, served by teacher);
  each with an authorised contact (A also has an unauthorised one).

Example::

    world = build_world(system)
    world.http("teacher").get(system.url("/api/v1/students"))
"""
from __future__ import annotations

import base64
import dataclasses
from datetime import date

import requests

from tests.support.infra import random_suffix
from tests.support.signing import ClusterRpcClient  # signs the contexts it passes, as the gateway does

PASSWORD = "world-passphrase-2026"

ROLES = ("teacher", "school_admin", "district_admin", "program_staff", "program_admin", "operator", "auditor")


@dataclasses.dataclass
class World:
    system: object
    suffix: str
    tenants: dict  # name -> id
    users: dict  # name -> {"id", "email", "token", "auth"}
    students: dict  # name -> id
    contacts: dict  # name -> id

    def http(self, user: str) -> requests.Session:
        return self.system.client(self.users[user]["token"])

    def auth(self, user: str) -> dict:
        return self.users[user]["auth"]

    def email(self, user: str) -> str:
        return self.users[user]["email"]

    def rpc(self):
        return ClusterRpcClient(uri=self.system.settings.amqp_uri, timeout=30)


def csv_b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def build_world(system) -> World:
    suffix = random_suffix(6)
    email = lambda name: f"{name}.{suffix}@world.example"  # noqa: E731
    tenants: dict = {}
    users: dict = {}
    with ClusterRpcClient(uri=system.settings.amqp_uri, timeout=60) as rpc:
        ops = f"ops.{suffix}@world.example"
        rpc.identity.bootstrap_user({"email": ops, "display_name": "World Ops", "role": "operator", "tenant_id": None}, PASSWORD)
        op_auth = rpc.identity.login({"email": ops, "password": PASSWORD}, client_ip="world")["user"]

        def tenant(name, kind, parent=None, **extra):
            data = {"kind": kind, "name": f"{name} {suffix}", "parent_id": tenants.get(parent), **extra}
            tenants[name] = rpc.identity.create_tenant(op_auth, data)["id"]

        tenant("D1", "district", postcode="20001", latitude=38.91, longitude=-77.02)
        tenant("S1", "school", "D1", postcode="20001", latitude=38.91, longitude=-77.02)
        tenant("S2", "school", "D1", postcode="20002")
        tenant("D2", "district")
        tenant("S3", "school", "D2")
        tenant("S4", "school")
        tenant("P1", "program")

        def user(name, role, tenant_name):
            tenant_id = tenants[tenant_name] if tenant_name else None
            created = rpc.identity.bootstrap_user(
                {"email": email(name), "display_name": f"{name.title()} {suffix}", "role": role, "tenant_id": tenant_id},
                PASSWORD,
            )
            session = rpc.identity.login({"email": email(name), "password": PASSWORD}, client_ip="world")
            users[name] = {"id": created["id"], "email": email(name), "token": session["token"], "auth": session["user"]}

        user("teacher", "teacher", "S1")
        user("teacher2", "teacher", "S1")
        user("school_admin", "school_admin", "S1")
        user("s2_teacher", "teacher", "S2")
        user("district_admin", "district_admin", "D1")
        user("s3_teacher", "teacher", "S3")
        user("s3_admin", "school_admin", "S3")
        user("d2_admin", "district_admin", "D2")
        user("program_staff", "program_staff", "P1")
        user("program_admin", "program_admin", "P1")
        user("operator", "operator", None)
        user("auditor", "auditor", None)

        adult_dob = date(date.today().year - 19, 1, 1).isoformat()
        header = ("student_key,first_name,last_name,grade,date_of_birth,student_email,contact_name,"
                  "contact_relationship,contact_email,contact_mobile,contact_language,contact_authorised,staff_email\n")
        s1 = header + (
            f"A,Ana,Alvarez,7,2013-03-04,,Maria Alvarez,mother,maria.{suffix}@family.example,2025550101,es,yes,{email('teacher')}\n"
            f"A,Ana,Alvarez,7,2013-03-04,,Tio Alvarez,uncle,tio.{suffix}@family.example,,es,no,\n"
            f"B,Ben,Brown,8,,,Bea Brown,mother,bea.{suffix}@family.example,,en,yes,\n"
            f"M,Mia,Moore,12,{adult_dob},mia.{suffix}@student.example,Mo Moore,father,mo.{suffix}@family.example,,en,yes,{email('teacher')}\n"
        )
        rpc.identity.import_roster(users["school_admin"]["auth"], csv_b64(s1))
        s2 = header + f"C,Cal,Chen,6,,,Cy Chen,father,cy.{suffix}@family.example,,zh,yes,{email('s2_teacher')}\n"
        rpc.identity.import_roster(_admin_of(rpc, tenants["S2"], users, email, suffix), csv_b64(s2))
        s3 = header + f"X,Xavi,Xu,9,,,Xia Xu,mother,xia.{suffix}@family.example,,en,yes,{email('s3_teacher')}\n"
        rpc.identity.import_roster(users["s3_admin"]["auth"], csv_b64(s3))
        p1 = header + f"Q,Quinn,Quarles,10,,,Quade Quarles,father,quade.{suffix}@family.example,,en,yes,{email('program_staff')}\n"
        rpc.identity.import_roster(users["program_admin"]["auth"], csv_b64(p1))

        students, contacts = {}, {}
        for admin, keys in (("school_admin", "ABM"), ("s3_admin", "X"), ("program_admin", "Q")):
            page = rpc.identity.list_students(users[admin]["auth"], {"per_page": 200})
            for item in page["items"]:
                if item["roster_key"] in keys:
                    students[item["roster_key"]] = item["id"]
                    detail = rpc.identity.get_student(users[admin]["auth"], item["id"])
                    for c in detail["contacts"]:
                        if c["relationship"] != "self":
                            contacts[c["name"].split()[0]] = c["id"]
        district_page = rpc.identity.list_students(users["district_admin"]["auth"], {"search": "Chen"})
        students["C"] = district_page["items"][0]["id"]
    return World(system=system, suffix=suffix, tenants=tenants, users=users, students=students, contacts=contacts)


def _admin_of(rpc, tenant_id, users, email, suffix) -> dict:
    """A school admin for S2 (made on demand; not part of the role matrix)."""
    rpc.identity.bootstrap_user(
        {"email": email("s2_admin"), "display_name": "S2 Admin", "role": "school_admin", "tenant_id": tenant_id}, PASSWORD,
    )
    session = rpc.identity.login({"email": email("s2_admin"), "password": PASSWORD}, client_ip="world")
    users["s2_admin"] = {"id": session["user"]["user_id"], "email": email("s2_admin"), "token": session["token"], "auth": session["user"]}
    return session["user"]
