"""Print alerts.yml as a Prometheus operator PrometheusRule (deploy/k8s/base/13-alert-rules.yaml).

alerts.yml is the one source of the rules: promtool checks and tests it (alerts.test.yml), a
Prometheus without the operator loads it as it is, and tests/deploy/test_alerts.py fails when
the PrometheusRule differs from what this prints.

Example::

    python deploy/prometheus/prometheusrule.py > deploy/k8s/base/13-alert-rules.yaml
"""
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def prometheus_rule() -> str:
    groups = yaml.safe_load((HERE / "alerts.yml").read_text())["groups"]
    document = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "weintervene", "labels": {"app.kubernetes.io/name": "weintervene"}},
        "spec": {"groups": groups},
    }
    return ("# Generated from deploy/prometheus/alerts.yml (the rules' one source; promtool tests it):\n"
            "#   python deploy/prometheus/prometheusrule.py > deploy/k8s/base/13-alert-rules.yaml\n"
            + yaml.safe_dump(document, sort_keys=False, width=110, allow_unicode=True))


if __name__ == "__main__":
    print(prometheus_rule(), end="")
