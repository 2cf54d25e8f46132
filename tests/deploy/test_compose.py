"""compose.yaml, the one-machine try-out: the Compose client accepts it (it parses without an
engine: `docker compose config`, or Debian's docker-compose, which .ci/run installs), and it runs
every component in a container of its own after the databases are migrated."""
from __future__ import annotations

import shutil
import subprocess

import yaml

from tests.deploy.manifests import ROOT
from weintervene.runner import ALL_COMPONENTS


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    assert legacy, "a Compose client is needed: docker compose, or apt-get install docker-compose (.ci/run does)"
    return [legacy]


def _config(path=ROOT / "compose.yaml") -> dict:
    result = subprocess.run([*compose_command(), "-f", str(path), "config"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_compose_client_accepts_compose_yaml():
    config = _config()
    services = config["services"]
    assert {"rabbitmq", "postgres", "migrate"} <= set(services)
    for name in ALL_COMPONENTS:
        service = services[name]
        assert service["command"] == ["run", "--service", name], name
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
        assert service["read_only"] is True and "ALL" in service["cap_drop"], name
    assert services["migrate"]["command"] == ["migrate"]
    # Only loopback: a try-out is not published on the machine's network.
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port.get("host_ip", port) if isinstance(port, dict) else port).startswith("127.0.0.1"), name


def test_the_compose_client_refuses_a_broken_file(tmp_path):
    broken = yaml.safe_load((ROOT / "compose.yaml").read_text())
    broken["services"]["gateway"]["depends_on"] = {"migrate": {"condition": "when_it_feels_like_it"}}
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = subprocess.run([*compose_command(), "-f", str(path), "config"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode != 0
