"""``python -m bench <name> [options]``: run one benchmark; without a name, list them."""
from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

HELPERS = {"support", "servers", "http_load", "profile_summary", "scaled_export"}


def available() -> dict[str, str]:
    """Benchmark name -> the first line of its docstring, read without importing it.

    Importing them all would let one benchmark's imports (say, weintervene.db) load
    before another applies eventlet's monkey patching, and hang it on a lock.
    """
    found = {}
    here = Path(__file__).parent
    for module in pkgutil.iter_modules([str(here)]):
        if module.name.startswith("_") or module.name in HELPERS:
            continue
        tree = ast.parse((here / f"{module.name}.py").read_text())
        doc = (ast.get_docstring(tree) or "").strip().splitlines()
        found[module.name] = doc[0] if doc else ""
    return found


def main(argv: list[str]) -> int:
    benches = available()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in benches:
        if argv and argv[0] not in ("-h", "--help"):
            print(f"unknown benchmark: {argv[0]}\n", file=sys.stderr)
        print("usage: python -m bench <name> [options]\n\nbenchmarks:")
        for name, line in sorted(benches.items()):
            print(f"  {name:<12} {line}")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(f"bench.{argv[0]}")
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
