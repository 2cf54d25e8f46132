"""The Prometheus alert rules parse, are complete, and name metrics the code exports."""
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import services.identity.accounts  # noqa: F401  (registers the sign-in counters)

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def test_rules_are_complete_and_use_exported_metrics():
    document = yaml.safe_load(RULES.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert {r["alert"] for r in rules} >= {"WeInterveneLoginFailureSpike", "WeInterveneLoginThrottlingActive"}
    exported = set()
    for metric in REGISTRY.collect():  # a labelled counter has no samples until used: use family names
        exported.add(metric.name + ("_total" if metric.type == "counter" else ""))
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        used = set(re.findall(r"weintervene_[a-z_]+", rule["expr"]))
        assert used and used <= exported, (rule["alert"], used - exported)
        assert rule["expr"].count("(") == rule["expr"].count(")")
