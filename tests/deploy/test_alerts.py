"""The alert rules: promtool checks them and runs their unit tests (deploy/prometheus/
alerts.test.yml: each operations alert fires on its trouble, quiet otherwise); the cluster's
PrometheusRule is the same rules; every metric an alert or the dashboard reads is one the code
exports. promtool is Debian's `prometheus` package (.ci/run installs it): missing, this fails."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from tests.deploy.manifests import ROOT, built, of_kind

PROMETHEUS = ROOT / "deploy" / "prometheus"
OPERATIONS_ALERTS = {"WeInterveneServerErrors", "WeInterveneTargetDown", "WeInterveneOutboxStuck",
                     "WeInterveneOutboxBacklogGrowing", "WeInterveneQueueDeep", "WeInterveneDeletionsOverdue",
                     "WeInterveneDeliveriesFailing"}


def promtool(*args, cwd=PROMETHEUS) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is needed (apt-get install prometheus; .ci/run installs it)"
    return subprocess.run([tool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _rules():
    return yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())


def test_the_rules_are_valid():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_operations_alert_has_a_promtool_case_and_they_pass():
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())
    tested = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", [])}
    defined = {rule["alert"] for group in _rules()["groups"] for rule in group["rules"]}
    assert OPERATIONS_ALERTS <= defined
    assert OPERATIONS_ALERTS <= tested
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("alert, looser", [
    ("WeInterveneDeletionsOverdue", "max(weintervene_deletion_requests_overdue) > 5"),
    ("WeInterveneOutboxStuck", "max by (service) (weintervene_outbox_oldest_pending_seconds) > 3000"),
])
def test_the_promtool_cases_fail_on_a_rule_that_misses_its_trouble(tmp_path, alert, looser):
    rules = _rules()
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = looser
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(rules))
    shutil.copy(PROMETHEUS / "alerts.test.yml", tmp_path)
    result = promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert result.returncode != 0 and alert in result.stdout + result.stderr


def test_the_clusters_prometheus_rule_is_alerts_yml():
    """deploy/k8s/base/13-alert-rules.yaml is generated: python deploy/prometheus/prometheusrule.py > it."""
    [rule] = of_kind(built("production"), "PrometheusRule").values()
    assert rule["spec"]["groups"] == _rules()["groups"], \
        "regenerate: python deploy/prometheus/prometheusrule.py > deploy/k8s/base/13-alert-rules.yaml"


def _exported_metric_names() -> set[str]:
    # Every module that defines a metric, imported (the services register theirs on import).
    import gateway.service  # noqa: F401
    from weintervene.runner import ALL_COMPONENTS, service_class

    for name in ALL_COMPONENTS:
        service_class(name)
    import services.referrals.delivery  # noqa: F401
    import services.retention.backlog  # noqa: F401
    import weintervene.mail  # noqa: F401

    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    # A counter's family is named without _total; a histogram's samples add _count/_bucket/_sum.
    return names | {n + "_total" for n in names} | {n + suffix for n in names for suffix in ("_count", "_bucket", "_sum")}


def _weintervene_metrics(expression: str) -> set[str]:
    return set(re.findall(r"\bweintervene_[a-z_]+", expression))


def test_every_metric_the_alerts_and_the_dashboard_read_is_exported():
    exported = _exported_metric_names()
    expressions = [rule["expr"] for group in _rules()["groups"] for rule in group["rules"]]
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "weintervene.json").read_text())
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = set().union(*map(_weintervene_metrics, expressions))
    assert {"weintervene_outbox_pending", "weintervene_deletion_requests_overdue", "weintervene_deliveries_failing"} <= used
    assert used <= exported, used - exported
