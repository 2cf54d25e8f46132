"""No Python file of the repository rebinds an attribute of nameko, kombu, amqp or eventlet.

The house rule (docs/FOUNDATIONS.md, "nameko and kombu"): libraries are used as their
authors meant them; we extend them through subclasses and nameko's DependencyProvider /
Entrypoint API (:mod:`weintervene.nameko_extensions`), never by assigning to a library's
module or class. Every file is parsed (``ast``), and these are refused when their target
is a name imported from one of those libraries (a module, a class, a function), or an
attribute path starting at one:

* ``publish.get_producer = …``, ``Consumer.ack_message += …``, ``del kombu.pools.x``;
* ``setattr(Consumer, "ack_message", …)`` / ``delattr(…)``;
* outside ``tests/``: ``mock.patch.object(Queue, …)``, ``monkeypatch.setattr(Queue, …)``,
  ``mock.patch("nameko.rpc.…")`` (a test may still spy on a library method for its own
  duration, as ``tests/integration/test_rpc_clients.py`` counts kombu's declarations).

``eventlet.monkey_patch()`` is a call the library offers for exactly this, not an
assignment, and passes. The database drivers (pg8000, psycopg) are checked by
``tests/unit/test_no_driver_rebinding.py``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("nameko", "kombu", "amqp", "eventlet")
SKIPPED_FOLDERS = {".venv", ".lock-tools", "node_modules", ".git", "build", "dist", "test-artifacts"}
PATCH_HELPERS = {"setattr", "delattr", "object"}  # monkeypatch.setattr / mock.patch.object / setattr()


def library_of(module: str | None) -> str | None:
    root = (module or "").split(".")[0]
    return root if root in LIBRARIES else None


def imported_names(tree: ast.AST) -> dict[str, str]:
    """Local name -> the library it came from, for every import of one (in any scope)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                library = library_of(alias.name)
                if library:
                    names[alias.asname or alias.name.split(".")[0]] = library
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            library = library_of(node.module)
            if library:
                for alias in node.names:
                    names[alias.asname or alias.name] = library
    return names


def root_name(node: ast.AST) -> str | None:
    """``a`` of ``a.b.c`` (or of ``a.b[0].c``); None for anything else."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def rebindings(source: str, in_tests: bool = False) -> list[str]:
    """Every rebinding of a library attribute in ``source``, as ``"line: what"``.

    Example: rebindings("from nameko.amqp import publish\\npublish.get_producer = f") -> ["2: publish.get_producer = …"]
    """
    tree = ast.parse(source)
    library_names = imported_names(tree)
    found = []

    def from_library(node) -> bool:
        return root_name(node) in library_names

    for node in ast.walk(tree):
        targets = []
        if isinstance(node, (ast.Assign, ast.Delete)):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            for element in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if isinstance(element, ast.Attribute) and from_library(element.value):
                    found.append(f"{node.lineno}: {ast.unparse(element)} = …")
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            builtin = isinstance(func, ast.Name) and name in ("setattr", "delattr")
            helper = isinstance(func, ast.Attribute) and name in PATCH_HELPERS and not in_tests
            if (builtin or helper) and from_library(node.args[0]):
                found.append(f"{node.lineno}: {ast.unparse(node)[:80]}")
            # mock.patch("nameko.rpc.Responder.send_response", …): a patch by dotted name.
            first = node.args[0]
            if (not in_tests and isinstance(func, ast.Attribute) and func.attr == "patch"
                    and isinstance(first, ast.Constant) and isinstance(first.value, str)
                    and library_of(first.value)):
                found.append(f"{node.lineno}: {ast.unparse(node)[:80]}")
    return found


def python_files() -> list[Path]:
    return sorted(path for path in ROOT.rglob("*.py")
                  if not SKIPPED_FOLDERS.intersection(path.relative_to(ROOT).parts))


def test_no_file_of_the_repository_rebinds_a_library_attribute():
    files = python_files()
    assert len(files) > 100 and ROOT / "weintervene" / "nameko_extensions.py" in files
    found = []
    for path in files:
        relative = path.relative_to(ROOT)
        for line in rebindings(path.read_text(), in_tests=relative.parts[0] == "tests"):
            found.append(f"{relative}:{line}")
    assert found == []


@pytest.mark.parametrize("source", [
    "from nameko.amqp import publish\npublish.get_producer = lambda *a: None",
    "from nameko.amqp.consume import Consumer\nfor n in ('ack_message',):\n    setattr(Consumer, n, None)",
    "def f():\n    from nameko.amqp.consume import Consumer\n    Consumer.ack_message = None",
    "import kombu.pools\nkombu.pools.producers = {}",
    "import nameko.rpc as nameko_rpc\nnameko_rpc.Responder.publisher_cls += ()",
    "import eventlet\ndel eventlet.sleep",
    "from kombu import Queue\nQueue.can_cache_declaration, x = True, 1",
    "from kombu import Queue\nfrom unittest import mock\nmock.patch.object(Queue, 'declare', None).start()",
    "from unittest import mock\nmock.patch('amqp.Connection.send_method', None).start()",
])
def test_each_kind_of_rebinding_is_found(source):
    assert rebindings(source)


@pytest.mark.parametrize("source", [
    "import eventlet\neventlet.monkey_patch()",
    "from nameko.rpc import Responder\nclass Ours(Responder):\n    publisher_cls = object",
    "from nameko.amqp.publish import Publisher\nclass P(Publisher):\n    def setup(self):\n        self.declare = []",
    "from kombu import Queue\nq = Queue('x')\nname = q.name",
    "import kombu\nclass Mine:\n    pass\nMine.kombu = kombu",
])
def test_extending_calling_and_reading_are_not_rebinding(source):
    assert rebindings(source) == []


def test_tests_may_spy_on_a_library_method_for_their_own_duration():
    spy = "from kombu import Queue\nfrom unittest import mock\nwith mock.patch.object(Queue, 'declare', None): pass"
    assert rebindings(spy, in_tests=True) == []
    assert rebindings(spy, in_tests=False)
    assert rebindings("from kombu import Queue\nQueue.declare = None", in_tests=True)  # never a plain assignment
