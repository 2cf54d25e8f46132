"""Single sign-on's configuration without a provider: the client secret sealed under the
versioned keyring (and re-sealed by a key rotation), the presets' issuers, bad input refused
with nothing stored, and who may configure. The flow itself runs against a real provider in
tests/integration/test_single_sign_on.py."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from services.identity import rekeying, single_sign_on
from services.identity.exceptions import SsoNotConfigured
from services.identity.models import SsoConfiguration
from tests.unit.identity_fixtures import PASSWORD, sent, service, session  # noqa: F401  (fixtures)
from weintervene.auth import AuthContext, Role
from weintervene.errors import BadRequest, Forbidden
from weintervene.hashing import Keyring
from weintervene.sealing import SealError, seal, sealed_key_id, unseal

KEY_ONE = {"secret_key": "the first key", "secret_key_id": "1", "previous_secret_keys": ""}
KEY_TWO = {"secret_key": "the second key", "secret_key_id": "2", "previous_secret_keys": "1:the first key"}
GOOGLE = {"preset": "google", "client_id": "123.apps.googleusercontent.com", "client_secret": "GOCSPX-secret",
          "allowed_domains": ["Riverside.K12.example", "@staff.riverside.example"]}


@pytest.fixture
def district(service):  # noqa: F811
    op = AuthContext(user_id="op", tenant_id="platform", role=Role.OPERATOR).to_dict()
    district = service.create_tenant(op, {"kind": "district", "name": "Riverside"})
    school = service.create_tenant(op, {"kind": "school", "name": "Lincoln", "parent_id": district["id"]})
    auths = {}
    for name, role, tenant in (("admin", "district_admin", district), ("principal", "school_admin", school)):
        service.bootstrap_user({"email": f"{name}@riverside.k12.example", "display_name": name, "role": role,
                                "tenant_id": tenant["id"]}, PASSWORD)
        auths[name] = service.login({"email": f"{name}@riverside.k12.example", "password": PASSWORD}, "127.0.0.1")["user"]
    return {"district": district["id"], "school": school["id"], **auths}


def test_sealing_round_trip_and_refusals(patch_settings):
    patch_settings(**KEY_ONE)
    sealed = seal("sso-client-secret", "s3cr3t")
    assert sealed_key_id(sealed) == "1" and "s3cr3t" not in sealed
    assert unseal("sso-client-secret", sealed) == "s3cr3t"
    assert seal("sso-client-secret", "s3cr3t") != sealed  # a fresh nonce each time
    with pytest.raises(SealError):
        unseal("another-purpose", sealed)  # the purpose is bound in
    body = sealed.partition(":")[2]
    with pytest.raises(SealError):
        unseal("sso-client-secret", f"1:{body[:-4]}AAAA")  # altered
    with pytest.raises(SealError):
        unseal("sso-client-secret", sealed, Keyring("2", {"2": b"the second key"}))  # key 1 not held


def test_configure_seals_the_secret_and_rotation_reseals_it(service, district, session, patch_settings):  # noqa: F811
    patch_settings(**KEY_ONE)
    shown = service.configure_sso(district["admin"], district["district"], GOOGLE)
    assert shown["issuer_url"] == "https://accounts.google.com" and shown["client_secret_set"] is True
    assert shown["allowed_domains"] == ["riverside.k12.example", "staff.riverside.example"]
    assert "GOCSPX-secret" not in str(shown)
    stored = session.scalar(select(SsoConfiguration.client_secret_sealed))
    assert stored.startswith("1:") and "GOCSPX" not in stored

    patch_settings(**KEY_TWO)
    assert rekeying.key_usage(session)["sso_configuration.client_secret"] == {"1": 1}
    assert rekeying.rekey(session) == {"sso_configuration.client_secret": 1}
    resealed = session.scalar(select(SsoConfiguration.client_secret_sealed))
    assert resealed.startswith("2:") and unseal(single_sign_on.SECRET_PURPOSE, resealed) == "GOCSPX-secret"
    assert rekeying.key_usage(session)["sso_configuration.client_secret"] == {"2": 1}
    kept = {k: v for k, v in GOOGLE.items() if k != "client_secret"}
    service.configure_sso(district["admin"], district["district"], kept)
    assert unseal(single_sign_on.SECRET_PURPOSE, session.scalar(select(SsoConfiguration.client_secret_sealed))) == "GOCSPX-secret"


def test_presets_name_their_issuers(service, district):  # noqa: F811
    assert single_sign_on.issuer_for("entra", None, "riverside.onmicrosoft.com") == \
        "https://login.microsoftonline.com/riverside.onmicrosoft.com/v2.0"
    assert single_sign_on.issuer_for("clever", "ignored", None) == "https://clever.com"
    assert single_sign_on.issuer_for("classlink", None, None) == "https://launchpad.classlink.com"
    assert single_sign_on.issuer_for("generic", "https://idp.example/realms/x/", None) == "https://idp.example/realms/x"


@pytest.mark.parametrize("change, field", [
    ({"preset": "entra"}, "provider_tenant"),
    ({"preset": "generic", "issuer_url": "http://idp.example"}, "issuer_url"),
    ({"preset": "generic", "issuer_url": "https://idp.example?x=1"}, "issuer_url"),
    ({"allowed_domains": ["not a domain"]}, "allowed_domains"),
    ({"jit_role": "teacher"}, "jit_tenant_id"),  # a district must say which school
    ({"jit_role": "school_admin"}, "jit_role"),  # never an administrator's role
    ({"client_secret": None}, "client_secret"),  # required the first time
])
def test_bad_configuration_is_refused_and_nothing_stored(service, district, session, change, field):  # noqa: F811
    with pytest.raises(BadRequest) as refused:
        service.configure_sso(district["admin"], district["district"], {k: v for k, v in {**GOOGLE, **change}.items() if v is not None})
    assert field in str(refused.value.details)
    assert session.scalar(select(func.count()).select_from(SsoConfiguration)) == 0


def test_who_configures(service, district):  # noqa: F811
    with pytest.raises(Forbidden) as school_admin:
        service.configure_sso(district["principal"], district["school"], GOOGLE)
    assert school_admin.value.code == "sso_configured_by_district"
    with pytest.raises(SsoNotConfigured):
        service.sso_configuration(district["admin"], district["district"])
    with pytest.raises(Exception) as other:
        service.configure_sso(district["admin"], district["school"], GOOGLE)  # not the admin's own tenant
    assert other.value.code == "tenant_not_found"


def test_a_deleted_user_leaves_no_provider_link_and_a_terminated_tenant_no_configuration(
        service, district, session):  # noqa: F811
    from services.identity.models import SsoLink, Tenant
    from tests.support.scanner import scan_engine

    service.configure_sso(district["admin"], district["district"], GOOGLE)
    config_id = session.scalar(select(SsoConfiguration.id))
    principal = district["principal"]["user_id"]
    session.add(SsoLink(user_id=principal, configuration_id=config_id, subject="google-sub-1234567890"))
    session.commit()
    counts = service.delete_for({"scope": "user", "subject_id": principal, "tenant_id": district["school"],
                                 "tenant_ids": [], "request_id": "r"})
    assert counts["sso_links"] == 1
    session.commit()
    assert scan_engine(session.get_bind(), "google-sub-1234567890") == []
    counts = service.delete_for({"scope": "tenant", "subject_id": district["district"], "tenant_id": district["district"],
                                 "tenant_ids": [district["district"]], "request_id": "t"})
    assert counts["sso_configurations"] == 1
    session.commit()
    assert session.scalar(select(func.count()).select_from(SsoConfiguration)) == 0
    assert session.get(Tenant, district["district"]) is None
