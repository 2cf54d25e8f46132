"""Generated OneRoster 1.2 CSV packages for tests and benches: a district, its schools,
classes, teachers, students, guardians and demographics (the demographics are there to
prove they are stored nowhere).

Example::

    district = District.generate(schools=["North High", "South High"], students_per_school=3)
    files = district.files()            # {"manifest.csv": b"...", "users.csv": b"...", ...}
    raw = district.zip()                # the same as one zip
"""
from __future__ import annotations

import csv
import dataclasses
import io
import zipfile

USERS_HEADER = ["sourcedId", "status", "dateLastModified", "enabledUser", "username", "userIds", "givenName",
                "familyName", "middleName", "identifier", "email", "sms", "phone", "agentSourcedIds", "grades",
                "password", "userMasterIdentifier", "resourceSourcedIds", "preferredGivenName",
                "preferredMiddleName", "preferredFamilyName", "primaryOrgSourcedId", "pronouns",
                "metadata.homeAddress"]
DEMOGRAPHICS_HEADER = ["sourcedId", "status", "dateLastModified", "birthDate", "sex",
                       "americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican",
                       "nativeHawaiianOrOtherPacificIslander", "white", "demographicRaceTwoOrMoreRaces",
                       "hispanicOrLatinoEthnicity", "countryOfBirthCode", "stateOfBirthAbbreviation",
                       "cityOfBirth", "publicSchoolResidenceStatus"]
MODIFIED = "2026-09-01T08:00:00Z"


def _csv(header: list[str], rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in header})
    return out.getvalue().encode("utf-8")


@dataclasses.dataclass
class District:
    name: str
    schools: list[dict]      # {"sourcedId", "name"}
    users: list[dict]        # users.csv rows
    roles: list[dict]        # roles.csv rows
    classes: list[dict]
    enrollments: list[dict]
    demographics: list[dict]
    district_id: str = "org-district"
    mode: str = "bulk"
    marker: str = "Zq"       # a string only the demographics and dropped columns hold

    @classmethod
    def generate(cls, schools: list[str], students_per_school: int = 3, classes_per_school: int = 2,
                 district: str = "Riverside District", teacher_emails: dict | None = None, marker: str = "Zq7"):
        """``teacher_emails``: {school index: [email, ...]}, one teacher per email and class round-robin."""
        users, roles, classes, enrollments, demographics, orgs = [], [], [], [], [], []
        for s, school_name in enumerate(schools):
            org = f"org-school-{s}"
            orgs.append({"sourcedId": org, "name": school_name})
            emails = (teacher_emails or {}).get(s) or [f"teacher{s}.{t}@sis.example" for t in range(2)]
            teacher_ids = []
            for t, email in enumerate(emails):
                tid = f"t-{s}-{t}"
                teacher_ids.append(tid)
                users.append({"sourcedId": tid, "enabledUser": "true", "username": f"tuser{s}{t}",
                              "givenName": f"Teacher{t}", "familyName": f"School{s}", "email": email,
                              "password": f"pw-{marker}-teacher", "pronouns": f"they-{marker}"})
                roles.append({"sourcedId": f"r-{tid}", "userSourcedId": tid, "roleType": "primary",
                              "role": "teacher", "orgSourcedId": org})
            class_ids = [f"c-{s}-{c}" for c in range(classes_per_school)]
            for c, cid in enumerate(class_ids):
                classes.append({"sourcedId": cid, "title": f"Class {c}", "schoolSourcedId": org,
                                "courseSourcedId": "course-1", "classType": "scheduled"})
                tid = teacher_ids[c % len(teacher_ids)]
                enrollments.append({"sourcedId": f"e-{cid}-{tid}", "classSourcedId": cid, "schoolSourcedId": org,
                                    "userSourcedId": tid, "role": "teacher", "primary": "true"})
            for n in range(students_per_school):
                sid = f"s-{s}-{n}"
                gid = f"g-{s}-{n}"
                users.append({"sourcedId": sid, "enabledUser": "true", "username": f"stu{s}{n}",
                              "givenName": f"Student{n}", "familyName": f"Family{s}x{n}",
                              "identifier": f"ID{s:02d}{n:05d}", "agentSourcedIds": gid,
                              "grades": f"{(n % 12) + 1:02d}", "password": f"pw-{marker}-student",
                              "pronouns": f"she-{marker}", "metadata.homeAddress": f"{n} Elm {marker}",
                              "primaryOrgSourcedId": org, "email": f"stu{s}.{n}@students.example"})
                roles.append({"sourcedId": f"r-{sid}", "userSourcedId": sid, "roleType": "primary",
                              "role": "student", "orgSourcedId": org})
                users.append({"sourcedId": gid, "enabledUser": "true", "username": f"gu{s}{n}",
                              "givenName": f"Parent{n}", "familyName": f"Family{s}x{n}",
                              "email": f"parent{s}.{n}@family.example", "sms": f"555{s:03d}{n:04d}",
                              "agentSourcedIds": sid, "metadata.homeAddress": f"{n} Oak {marker}"})
                roles.append({"sourcedId": f"r-{gid}", "userSourcedId": gid, "roleType": "primary",
                              "role": "guardian" if n % 2 == 0 else "parent", "orgSourcedId": org})
                cid = class_ids[n % len(class_ids)]
                enrollments.append({"sourcedId": f"e-{cid}-{sid}", "classSourcedId": cid, "schoolSourcedId": org,
                                    "userSourcedId": sid, "role": "student", "primary": "false"})
                demographics.append({"sourcedId": sid, "birthDate": f"2012-03-{(n % 28) + 1:02d}",
                                     "sex": "female", "hispanicOrLatinoEthnicity": f"true{marker}",
                                     "cityOfBirth": f"Springfield{marker}"})
        return cls(district, orgs, users, roles, classes, enrollments, demographics, marker=marker)

    def files(self, manifest: dict | None = None) -> dict[str, bytes]:
        mode = self.mode
        orgs = [{"sourcedId": self.district_id, "name": self.name, "type": "district"}] + [
            {**s, "type": "school", "parentSourcedId": self.district_id} for s in self.schools]
        if mode == "delta":
            for rows in (orgs, self.users, self.roles, self.classes, self.enrollments):
                for row in rows:
                    row.setdefault("status", "active")
                    row.setdefault("dateLastModified", MODIFIED)
        properties = {"manifest.version": "1.0", "oneroster.version": "1.2", "file.academicSessions": mode,
                      "file.categories": "absent", "file.classes": mode, "file.classResources": "absent",
                      "file.courses": "absent", "file.demographics": mode, "file.enrollments": mode,
                      "file.orgs": mode, "file.roles": mode, "file.users": mode,
                      "source.systemName": "Test SIS", "source.systemCode": "test"}
        properties.update(manifest or {})
        return {
            "manifest.csv": _csv(["propertyName", "value"], [{"propertyName": k, "value": v} for k, v in properties.items()]),
            "orgs.csv": _csv(["sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"], orgs),
            "users.csv": _csv(USERS_HEADER, self.users),
            "roles.csv": _csv(["sourcedId", "status", "dateLastModified", "userSourcedId", "roleType", "role",
                               "beginDate", "endDate", "orgSourcedId", "userProfileSourcedId"], self.roles),
            "classes.csv": _csv(["sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId",
                                 "classCode", "classType", "location", "schoolSourcedId", "termSourcedIds",
                                 "subjects", "subjectCodes", "periods"], self.classes),
            "enrollments.csv": _csv(["sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId",
                                     "userSourcedId", "role", "primary", "beginDate", "endDate"], self.enrollments),
            "academicSessions.csv": _csv(["sourcedId", "status", "dateLastModified", "title", "type", "startDate",
                                          "endDate", "parentSourcedId", "schoolYear"],
                                         [{"sourcedId": "term-1", "title": "Fall", "type": "term",
                                           "startDate": "2026-09-01", "endDate": "2027-01-31", "schoolYear": "2027"}]),
            "demographics.csv": _csv(DEMOGRAPHICS_HEADER, self.demographics),
        }

    def zip(self, manifest: dict | None = None, files: dict[str, bytes] | None = None) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in (files or self.files(manifest)).items():
                archive.writestr(name, data)
        return out.getvalue()

    def student_ids(self, school: int) -> list[str]:
        return [u["sourcedId"] for u in self.users if u["sourcedId"].startswith(f"s-{school}-")]
