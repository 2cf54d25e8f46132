"""Every object the overlays build validates strictly: Kubernetes' own kinds against the API's
schemas (``kubernetes-validate``, offline, at the oldest and newest version we support), custom
resources against their operators' CRD schemas (deploy/schemas). A field either does not name
(a typo the API server would prune or refuse) fails."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.manifests import OVERLAYS, ROOT, built

SCHEMAS = ROOT / "deploy" / "schemas"
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CUSTOM_GROUPS = {"keda.sh", "rabbitmq.com", "postgresql.cnpg.io", "cert-manager.io", "monitoring.coreos.com"}
METADATA_FIELDS = {"name", "namespace", "labels", "annotations"}


def _strict(schema):
    """The CRD schema with unnamed fields refused wherever it names its fields (the API server
    prunes them silently; a typo would be lost), except where it keeps unknown fields."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {k: (_strict(v) if k != "properties" else {n: _strict(s) for n, s in v.items()})
              for k, v in schema.items()}
    if ("properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        schema["additionalProperties"] = False
    return schema


def crd_validator(document) -> jsonschema.Draft4Validator:
    group, _, version = document["apiVersion"].partition("/")
    path = SCHEMAS / group / f"{document['kind']}_{version}.json"
    assert path.exists(), f"no CRD schema for {document['apiVersion']} {document['kind']}: extract it (deploy/schemas)"
    schema = _strict(json.loads(path.read_text()))
    # metadata is the API server's ObjectMeta; the CRD schema says only "object".
    schema["properties"]["metadata"] = {"type": "object"}  # checked in validate()
    return jsonschema.Draft4Validator(schema)


def validate(document, version=KUBERNETES_VERSIONS[-1]) -> None:
    """Raise when ``document`` does not validate strictly (kubernetes_validate.ValidationError
    or jsonschema.ValidationError)."""
    group = document["apiVersion"].partition("/")[0]
    if group in CUSTOM_GROUPS:
        extra = set(document["metadata"]) - METADATA_FIELDS
        if extra:
            raise jsonschema.ValidationError(f"unexpected metadata fields {sorted(extra)}")
        crd_validator(document).validate(document)
    else:
        kubernetes_validate.validate(document, version, strict=True)


def _name(document) -> str:
    return f"{document['kind']}/{document['metadata']['name']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_built_object_validates_strictly(overlay, version):
    failures = []
    documents = built(overlay)
    assert len(documents) > 20
    for document in documents:
        try:
            validate(document, version)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            failures.append(f"{_name(document)}: {getattr(exc, 'message', exc)}")
    assert not failures, "\n".join(failures)


def test_every_custom_resource_kind_has_its_schema():
    kinds = {(d["apiVersion"], d["kind"]) for overlay in OVERLAYS for d in built(overlay)
             if d["apiVersion"].partition("/")[0] in CUSTOM_GROUPS}
    assert ("keda.sh/v1alpha1", "ScaledObject") in kinds
    for api_version, kind in kinds:
        group, _, version = api_version.partition("/")
        assert (SCHEMAS / group / f"{kind}_{version}.json").exists(), (api_version, kind)


def _first(documents, kind):
    return next(d for d in documents if d["kind"] == kind)


@pytest.mark.parametrize("kind, mistake", [
    ("Deployment", lambda d: d["spec"].__setitem__("replica", 2)),
    ("Deployment", lambda d: d["spec"]["template"]["spec"]["containers"][0].__setitem__("envfrom", [])),
    ("Deployment", lambda d: d["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]
     .__setitem__("runAsNonroot", True)),
    ("ScaledObject", lambda d: d["spec"].__setitem__("maxReplicas", 6)),
    ("ScaledObject", lambda d: d["spec"].__setitem__("minReplicaCount", "one")),
    ("User", lambda d: d["spec"].__setitem__("importCredentialSecret", {"name": "x"})),
    ("User", lambda d: d["metadata"].__setitem__("label", {})),
])
def test_a_mistaken_field_fails(kind, mistake):
    """The checks above can fail: each known-bad variant of a built object is refused."""
    document = _first(built("production"), kind)
    validate(document)
    mistake(document)
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
        validate(document)
