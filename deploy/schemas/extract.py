"""Extract the openAPIV3Schema of the custom resources deploy/k8s uses from their operators' CRDs.

Only the schemas (data) are kept, one JSON file per kind and version, with the free-text
``description`` fields dropped (they are most of each file's size and validate nothing).
README.md names each source repository, its commit and licence.

Example (from a checkout of each operator's repository at the commit README.md names)::

    python deploy/schemas/extract.py keda:/src/keda/config/crd/bases/keda.sh_scaledobjects.yaml
    # writes deploy/schemas/keda.sh/ScaledObject_v1alpha1.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def without_descriptions(schema):
    """The schema with every string-valued ``description`` removed (a property *named*
    description, whose value is a schema, stays)."""
    if isinstance(schema, dict):
        return {k: without_descriptions(v) for k, v in schema.items()
                if not (k == "description" and isinstance(v, str))}
    if isinstance(schema, list):
        return [without_descriptions(v) for v in schema]
    return schema


def extract(crd_text: str) -> list[Path]:
    written = []
    for crd in yaml.safe_load_all(crd_text):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = without_descriptions(version["schema"]["openAPIV3Schema"])
            target = HERE / group / f"{kind}_{version['name']}.json"
            target.parent.mkdir(exist_ok=True)
            target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
            written.append(target)
    return written


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        path = argument.split(":", 1)[-1]
        for target in extract(Path(path).read_text()):
            print(target.relative_to(HERE))
