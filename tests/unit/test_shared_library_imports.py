"""The shared library (weintervene/) depends on no service: no module under it imports
``services`` or ``gateway``, nor names one of their modules for importlib. What a service
contributes (its class, its commands, its keyed stores) it declares as an entry point
(weintervene/plugins.py, pyproject.toml)."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICE_PACKAGES = ("services", "gateway")
MODULE_PATH = re.compile(r"^(services|gateway)(\.[A-Za-z_][A-Za-z0-9_]*)+(:[A-Za-z_][A-Za-z0-9_]*)?$")


def _imports_of_services(path: Path) -> list[str]:
    """``["weintervene/cli.py:150 services.directory.importer", ...]`` for one module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_PATH.match(node.value):
            modules = [node.value]  # "services.x.y" for importlib.import_module
        else:
            continue
        found += [f"{path.relative_to(ROOT)}:{node.lineno} {m}" for m in modules
                  if m.split(".")[0].split(":")[0] in SERVICE_PACKAGES]
    return found


def test_no_module_of_the_shared_library_imports_a_service():
    offenders = [hit for path in sorted((ROOT / "weintervene").rglob("*.py")) for hit in _imports_of_services(path)]
    assert not offenders, "weintervene/ must not depend on a service (declare an entry point instead): " + ", ".join(offenders)


def test_every_component_declares_its_service_class():
    from weintervene.config import COMPONENTS
    from weintervene.plugins import service_class, service_names

    assert set(service_names()) == set(COMPONENTS)
    for name in COMPONENTS:
        assert service_class(name).name == name


def test_the_services_commands_reach_the_cli():
    from weintervene.cli import build_parser

    parser = build_parser()
    listed = parser.format_help()
    for command in ("run", "demo", "migrate", "make-migration", "create-user", "rotate-key",
                    "import-directory", "export-directory", "audit"):
        assert re.search(rf"^    {command}\s", listed, re.M), (command, listed)
    args = parser.parse_args(["audit", "verify"])
    assert args.func.__module__ == "services.retention.commands"
    args = parser.parse_args(["import-directory", "x", "--layout", "ohana-csv"])
    assert args.func.__module__ == "services.directory.commands" and args.layout == "ohana-csv"


def test_the_keyed_stores_are_declared_by_their_services():
    from weintervene.plugins import keyed_stores

    stores = keyed_stores()
    assert set(stores) == {"identity", "retention"}
    assert all(callable(m.rekey) and callable(m.key_usage) for m in stores.values())


def test_a_stale_egg_info_in_the_checkout_hides_no_declaration(tmp_path):
    """Python run from a source checkout has it first on sys.path; an old ``weintervene.egg-info``
    there (from an earlier ``pip install .``, without the entry-point groups) must not hide the
    installed metadata's declarations."""
    stale = tmp_path / "weintervene.egg-info"
    stale.mkdir()
    (stale / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: weintervene\nVersion: 0.0.1\n")
    (stale / "entry_points.txt").write_text("[console_scripts]\nweintervene = weintervene.cli:main\n")
    probe = ("from weintervene.plugins import service_class, command_registrars, keyed_stores; "
             "print(service_class('identity').name, len(command_registrars()), sorted(keyed_stores()))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[0] == "identity 2 ['identity', 'retention']"
