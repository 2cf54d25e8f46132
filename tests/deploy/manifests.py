"""The manifests as the cluster gets them: each overlay built with ``kubectl kustomize``.

Example::

    >>> [d["kind"] for d in built("production")][:2]
    ['Namespace', 'ServiceAccount']
"""
from __future__ import annotations

import copy
import functools
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "production")
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


@functools.lru_cache(maxsize=None)
def _build(directory: str) -> tuple:
    kubectl = shutil.which("kubectl")
    # A missing kubectl fails the deploy tests (never skips them): .ci/run says how to install it.
    assert kubectl, "kubectl (with its built-in kustomize) is needed to build deploy/k8s"
    out = subprocess.run([kubectl, "kustomize", directory], check=True, capture_output=True, text=True).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def built(overlay: str) -> list[dict]:
    """Every object ``kubectl kustomize deploy/k8s/overlays/<overlay>`` prints (a fresh copy)."""
    return copy.deepcopy(list(_build(str(K8S / "overlays" / overlay))))


def of_kind(documents, kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def pod_specs(documents):
    """(kind/name, pod spec) of every object that makes pods."""
    for d in documents:
        if d["kind"] in POD_KINDS:
            yield f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]
        elif d["kind"] == "CronJob":
            yield f"CronJob/{d['metadata']['name']}", d["spec"]["jobTemplate"]["spec"]["template"]["spec"]
