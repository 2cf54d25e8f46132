"""nameko, kombu, amqp and eventlet are the versions ``weintervene/nameko_extensions.py`` was
written against, and the ones pinned: an upgrade is a decision, not an accident.

Our extensions subclass nameko's ``Consumer``, ``ReplyListener``, ``RpcConsumer``, ``Rpc``,
``Responder`` and ``Publisher`` and override kombu's ``Queue.can_cache_declaration``; a new
release may rename, reorder or drop what they build on. When this fails: read the new
release's ``nameko/rpc.py``, ``messaging.py``, ``events.py``, ``amqp/consume.py``,
``amqp/publish.py`` (and kombu's ``entity.py``, ``messaging.py``) against each extension, run
``tests/unit`` and the RPC / broker-restart integration tests, then move the pin in
``pyproject.toml`` (``make lock``) and ``WRITTEN_AGAINST`` together.
"""
from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from weintervene.nameko_extensions import WRITTEN_AGAINST

ROOT = Path(__file__).resolve().parents[2]
LIBRARIES = ("nameko", "kombu", "amqp", "eventlet")


def pins() -> dict[str, str]:
    """``{name: version}``: pyproject's exact pins, then the lock's for transitive ones (amqp)."""
    found = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            found[match.group(1).lower()] = match.group(2)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name, _, pinned = requirement.partition("==")
        found[name.strip().lower()] = pinned.strip()
    return found


def mismatches(installed: dict[str, str], pinned: dict[str, str], written_against: dict[str, str]) -> list[str]:
    """What disagrees, one line per library; empty when installed == pinned == written against.

    Example: mismatches({"kombu": "5.8.0"}, {"kombu": "5.7.0"}, {"kombu": "5.7.0"}) -> ["kombu: …"]
    """
    out = []
    for name in sorted(written_against):
        seen = (installed.get(name), pinned.get(name), written_against[name])
        if len(set(seen)) != 1:
            out.append(f"{name}: installed {seen[0]}, pinned {seen[1]}, nameko_extensions written against {seen[2]}")
    return out


def test_the_installed_libraries_are_the_ones_the_extensions_were_written_against_and_pinned():
    assert set(WRITTEN_AGAINST) == set(LIBRARIES)
    installed = {name: version(name) for name in LIBRARIES}
    assert mismatches(installed, pins(), WRITTEN_AGAINST) == []


@pytest.mark.parametrize("which", ["installed", "pinned", "written_against"])
def test_any_one_of_the_three_moving_alone_is_reported(which):
    same = {name: WRITTEN_AGAINST[name] for name in LIBRARIES}
    versions = {"installed": dict(same), "pinned": dict(same), "written_against": dict(same)}
    versions[which]["kombu"] = "5.8.0"
    [line] = mismatches(versions["installed"], versions["pinned"], versions["written_against"])
    assert line.startswith("kombu:") and "5.8.0" in line
