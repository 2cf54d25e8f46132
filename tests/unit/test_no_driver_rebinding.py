"""Nothing in the repository assigns to an attribute of the PostgreSQL driver's modules or
classes (docs/FOUNDATIONS.md, "PostgreSQL driver"): the driver is extended only through its
documented hooks (psycopg2's ``extensions.set_wait_callback``, SQLAlchemy's events).

Every Python file is parsed; a name bound by importing a driver package (``import
pg8000.core as core``, ``from psycopg2 import extensions``...) must never be the root of an
assignment target (``core.CoreConnection.execute_unnamed = f``,
``converters.PG_TYPES[DATE] = f``), nor the object of ``setattr``/``delattr`` or pytest's
``monkeypatch.setattr`` (nor a dotted string naming one).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = ("pg8000", "psycopg2", "psycopg", "psycopg_c", "psycopg_binary", "psycogreen", "asyncpg")
SKIPPED = {".venv", ".lock-tools", ".git", "node_modules", "data", "test-artifacts"}


def _is_driver(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in DRIVERS


def _root(node: ast.AST) -> str | None:
    """The name an attribute/subscript chain starts from: ``a`` for ``a.b[c].d``."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def driver_rebindings(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: what`` for each assignment to a driver module's or class's attribute."""
    tree = ast.parse(source, filename)
    driver_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _is_driver(alias.name):
                    driver_names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and _is_driver(node.module):
            driver_names.update(alias.asname or alias.name for alias in node.names)
    found = []

    def flag(node: ast.AST, what: str) -> None:
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = list(node.targets)
        for target in targets:
            for part in ast.walk(target):  # tuple targets: a, core.x = ...
                if isinstance(part, (ast.Attribute, ast.Subscript)) and _root(part) in driver_names:
                    flag(node, ast.unparse(part))
                    break
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("setattr", "delattr") and node.args:
                first = node.args[0]
                if _root(first) in driver_names or isinstance(first, ast.Name) and first.id in driver_names:
                    flag(node, f"{name}({ast.unparse(first)}, ...)")
                elif isinstance(first, ast.Constant) and isinstance(first.value, str) and _is_driver(first.value):
                    flag(node, f"{name}({first.value!r}, ...)")
    return found


def python_files() -> list[Path]:
    return [path for path in ROOT.rglob("*.py") if not SKIPPED & set(path.relative_to(ROOT).parts)]


def test_no_file_assigns_to_the_database_drivers_attributes():
    files = python_files()
    assert len(files) > 100  # the repository's code, tests and benches, not an empty search
    found = [hit for path in files for hit in driver_rebindings(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == []


# Each of the rebindings weintervene/db.py made before psycopg2 (and the test that patched pg8000).
@pytest.mark.parametrize("source", [
    "import pg8000.core as core\ncore.CoreConnection.execute_unnamed = execute_unnamed\n",
    "import pg8000.core as core\ncore.CoreConnection.execute_simple = execute_simple\n",
    "import pg8000.legacy as legacy\nlegacy.convert_paramstyle = convert_paramstyle\n",
    "import pg8000.converters as converters\nconverters.PG_TYPES[converters.DATE] = date_in\n",
    "import pg8000.core\nmonkeypatch.setattr(pg8000.core.CoreConnection, method, recording)\n",
    "from psycopg2 import extensions\nextensions.connection.cursor = cursor\n",
    "import psycopg2.extras as extras\nextras.execute_values.__defaults__ = (None, 10)\n",
    "import psycopg\nsetattr(psycopg.Connection, 'execute', execute)\n",
    "monkeypatch.setattr('psycopg2.connect', connect)\n",
    "from psycopg2 import extensions\nextensions.string_types[1082], other = parse, 1\n",
])
def test_the_check_finds_a_rebinding(source):
    assert len(driver_rebindings(source)) == 1


@pytest.mark.parametrize("source", [
    "from psycopg2 import extensions\nextensions.set_wait_callback(callback)\n",  # the documented hook
    "import psycopg2\nconnection = psycopg2.connect(dsn)\nconnection.autocommit = True\n",  # an instance's
    "import eventlet\neventlet.monkey_patch(psycopg=True)\n",
    "core = object()\ncore.x = 1\n",  # not the driver
])
def test_documented_use_is_not_a_rebinding(source):
    assert driver_rebindings(source) == []
