"""The Prometheus alert rules parse, are complete, and name metrics the code exports."""
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import gateway.http  # noqa: F401  (the HTTP histogram)
import services.identity.accounts  # noqa: F401  (registers the sign-in counters)
import services.referrals.backlog  # noqa: F401  (the backlog gauges)
import services.retention.backlog  # noqa: F401
import weintervene.observability  # noqa: F401

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def test_rules_are_complete_and_use_exported_metrics():
    document = yaml.safe_load(RULES.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert {r["alert"] for r in rules} >= {"WeInterveneLoginFailureSpike", "WeInterveneLoginThrottlingActive"}
    exported = set()
    for metric in REGISTRY.collect():  # a labelled counter has no samples until used: use family names
        exported.add(metric.name + ("_total" if metric.type == "counter" else ""))
        if metric.type == "histogram":
            exported.update(metric.name + suffix for suffix in ("_count", "_bucket", "_sum"))
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        used = set(re.findall(r"weintervene_[a-z_]+", rule["expr"]))
        # Prometheus' own up, and RabbitMQ's exporter (the queue-depth rule), are not ours to export.
        assert used or re.search(r"\b(up|rabbitmq_[a-z_]+)\{", rule["expr"]), rule["alert"]
        assert used <= exported, (rule["alert"], used - exported)
        assert rule["expr"].count("(") == rule["expr"].count(")")
