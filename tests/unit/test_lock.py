"""The lock (requirements/*.txt) agrees with pyproject's pins, and the venv is what the lock names.

A pin changed in pyproject.toml without `make lock` fails here, so no install path (make venv,
.ci/run, deploy/Dockerfile) can silently install something other than what was tested.
"""
from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lock.txt"
TEST_LOCK = ROOT / "requirements" / "test-lock.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _normal(name: str) -> str:
    """PEP 503 normal form: ``PyYAML`` and ``pyyaml``, ``argon2_cffi`` and ``argon2-cffi`` are one name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, tuple[str, list[str]]]:
    """``{name: (version, [hashes])}`` of a ``--generate-hashes`` lock file.

    >>> locked(LOCK)["nameko"][0]
    '3.0.0rc11'
    """
    entries: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            current = _normal(match.group(1))
            entries[current] = (match.group(2), [])
        elif current and line.strip().startswith("--hash=sha256:"):
            entries[current][1].append(line.strip().removeprefix("--hash=sha256:").rstrip(" \\"))
        elif not line.startswith(" "):
            current = None
    return entries


def pinned(extra: str | None = None) -> dict[str, str]:
    """pyproject's exact pins, ``{name: version}`` (the runtime dependencies, or an extra's)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["optional-dependencies"][extra] if extra else project["dependencies"]
    pins = {}
    for requirement in requirements:
        name, sep, pin = requirement.partition("==")
        assert sep, f"{requirement!r} in pyproject.toml is not pinned exactly"
        pins[_normal(name.split("[")[0].strip())] = pin.strip()
    return pins


def test_every_runtime_pin_is_in_both_locks_at_the_same_version():
    for lock in (LOCK, TEST_LOCK):
        entries = locked(lock)
        wrong = {name: (pin, entries.get(name, ("missing",))[0])
                 for name, pin in pinned().items() if entries.get(name, (None,))[0] != pin}
        assert not wrong, f"{lock.name} disagrees with pyproject.toml {{name: (pin, locked)}}: {wrong}; run `make lock`"


def test_every_test_pin_is_in_the_test_lock_at_the_same_version():
    entries = locked(TEST_LOCK)
    wrong = {name: (pin, entries.get(name, ("missing",))[0])
             for name, pin in pinned("test").items() if entries.get(name, (None,))[0] != pin}
    assert not wrong, f"test-lock.txt disagrees with pyproject.toml: {wrong}; run `make lock`"


def test_the_test_lock_ships_the_runtime_locks_versions():
    """What is tested (test-lock) is what ships (lock): the runtime lock constrains the test lock."""
    runtime, test = locked(LOCK), locked(TEST_LOCK)
    differ = {name: (v, test.get(name, ("missing",))[0]) for name, (v, _) in runtime.items()
              if test.get(name, (None,))[0] != v}
    assert not differ, differ


def test_every_locked_file_has_a_hash():
    for lock in (LOCK, TEST_LOCK):
        unhashed = [name for name, (_, hashes) in locked(lock).items() if not hashes]
        assert not unhashed, f"{lock.name}: no --hash for {unhashed}"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for _, hashes in locked(lock).values() for h in hashes)


def test_the_venv_holds_what_the_test_lock_names():
    """The interpreter running the suite was installed from the lock (`make venv`), not resolved afresh."""
    differ = {}
    for name, (locked_version, _) in locked(TEST_LOCK).items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "missing"
        if installed != locked_version:
            differ[name] = (locked_version, installed)
    assert not differ, f"{{name: (locked, installed)}}: {differ}; run `make venv`"


def test_every_install_path_installs_only_from_the_lock():
    """make venv (so make run, make test, .ci/run) and the image: each ``pip install`` either takes a
    lock with ``--require-hashes`` or installs the project alone with ``--no-deps``; nothing resolves."""
    lines = []
    for path in (ROOT / "Makefile", ROOT / "deploy" / "Dockerfile"):
        text = path.read_text().replace("\\\n", " ")
        lines += [(path.name, line.strip()) for line in text.splitlines()
                  if re.search(r"\bpip install\b", line) and not line.lstrip().startswith("#")]
    assert any("Dockerfile" == name for name, _ in lines) and any("Makefile" == name for name, _ in lines)
    loose = [(name, line) for name, line in lines
             if not ("--no-deps" in line and ("--require-hashes" in line and re.search(r"-r (requirements/|\$\((TEST_)?LOCK\))", line)
                                              or re.search(r"(-e )?\.(\s|$)", line)))]
    # The lock tool's own throwaway venv is the one exception: it is no part of what is installed.
    loose = [(name, line) for name, line in loose if "$(LOCK_TOOLS)" not in line]
    assert not loose, f"pip installs that do not come from the lock: {loose}"
    assert "$(TEST_LOCK)" in (ROOT / "Makefile").read_text().split("$(STAMP):")[1].splitlines()[0], \
        "the venv must be rebuilt when the lock changes"
    assert re.search(r"^make test\b", (ROOT / ".ci" / "run").read_text(), re.M), "CI must install through make venv"
